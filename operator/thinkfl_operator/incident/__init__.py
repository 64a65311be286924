"""A FailureIncident resource: its spec read into an ``Incident``, its status built from a
``Diagnosis``, and its kubectl view."""
