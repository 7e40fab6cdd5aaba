"""The web dashboard at /ui: server-rendered pages over the same operations as the API.

Contract the browser tests rely on (keep it stable):

- ``GET /ui/login``: a form with ``<input name="token">`` and a button ``Sign in``; signing in
  redirects to ``/ui`` (or to the page asked for). Every page has a ``Sign out`` button.
- Nav links ``Overview``, ``Tasks``, ``Runs``, ``Events`` (/ui, /ui/tasks, /ui/runs, /ui/events).
- ``/ui/tasks?status=&kind=&q=&cursor=``: rows ``data-testid="task-row"``, each with a link
  (the task title) to ``/ui/tasks/{id}``; ``Next page`` link carries ``cursor``.
- ``/ui/tasks/{id}``: buttons ``Run now``, ``Pause``, ``Resume``, ``Snooze``, ``Cancel`` (only
  those that apply). ``Run now`` redirects (303) to the new run's page ``/ui/runs/{run_id}``.
  Timeline rows ``data-testid="occurrence"``; a DST change is a row ``data-testid="dst-change"``.
- ``/ui/runs/{id}``: ``data-testid="run-status"`` holds the status as domain.runs.RunStatus
  names it (queued, running, awaiting_approval, deferred, succeeded, dead, canceled,
  deduplicated), refreshed every second by htmx while the run can still change (queued,
  running, deferred); steps are ``data-testid="step"``; buttons ``Approve`` and ``Reject``
  (awaiting_approval), ``Retry`` (dead), ``Cancel run`` (not yet finished).
- ``/ui/runs?status=&task_id=&cursor=``: rows ``data-testid="run-row"``; the button
  ``Retry all dead`` opens a confirmation page ``/ui/runs/retry-dead`` whose button
  ``Confirm retry`` retries them (then redirects to ``/ui/runs?status=queued``).
- ``/ui/events?stream=&type=&actor=&correlation_id=&after=&before=&since=&until=``: rows
  ``data-testid="event-row"``, newest first, each with ``<details data-testid="event-json">``.
- After an action a notice ``data-testid="notice"`` says what happened; refusals are HTML
  pages with the status (4xx) and ``data-testid="error"`` naming the field.
"""
