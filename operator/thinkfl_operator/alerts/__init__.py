"""Alertmanager alerts → FailureIncidents: the payload (``payload``, pure), who may post
(``guard``) and the HTTP receiver (``server``)."""
