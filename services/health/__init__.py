"""Health: worker presence, the /health report, and the ops server for processes without the API."""
