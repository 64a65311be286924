"""The self-refinement loop's pure core: SRE labels, grading, records and their replay.

An SRE names the real root cause of a diagnosed incident (``label``); the diagnosis is graded
against it with the paper's multi-factor grader (``grading``); the diagnosis is kept as a
compact, self-contained record in a ConfigMap the incident owns (``home``; ``record``, its schema
checked by ``shape`` and upgraded from version 1 by ``legacy``; ``conversations``) so confirmed
incidents can be exported as rows of one schema (``rows``, ``export``, ``sources``), without the
cluster's names (``redact``, ``names``, ``tokens``), scored as a GRPO reward (``reward``), and
replayed against a new model before it is rolled out (``replay``, ``opening``, ``report``).
Nothing here imports kopf: the kube layer calls these functions and writes their results into
the status.
"""
