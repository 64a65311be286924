"""The Kubernetes API through the official client, without kopf: creating, listing and patching
FailureIncidents outside kopf's handlers, and reading which node each pod runs on."""
