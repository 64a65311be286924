"""The self-refinement loop's pure core: SRE labels, grading, records and their replay.

An SRE names the real root cause of a diagnosed incident (``label``); the diagnosis is graded
against it with the paper's multi-factor grader (``grading``); the diagnosis is kept as a
compact, self-contained record on the resource (``record``, ``conversations``) so confirmed
incidents can be exported for training, and replayed against a new model before it is rolled
out (``replay``, ``opening``). Nothing here imports kopf: the kube layer calls these functions
and writes their results into the status.
"""
