"""The worker side: ``handoff()``, the recorder and the activity interceptor."""
