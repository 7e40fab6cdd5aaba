"""The web dashboard at /ui: server-rendered pages over the same operations as the API.

Contract the browser tests rely on (keep it stable):

- ``GET /ui/login``: a form with ``<input name="token">`` and a button ``Sign in``; signing in
  redirects to ``/ui`` (or to the page asked for). Every page has a ``Sign out`` button.
- Nav links ``Overview``, ``Tasks``, ``Runs``, ``Events`` (/ui, /ui/tasks, /ui/runs, /ui/events).
- ``/ui/tasks?status=&kind=&q=&cursor=``: rows ``data-testid="task-row"``, each with a link
  (the task title) to ``/ui/tasks/{id}``; ``Next page`` link carries ``cursor``. With
  ``tasks:write`` each open task's row also has ``Run now``, ``Pause``/``Resume`` and
  ``Snooze 1 h`` buttons (pause, resume and snooze come back to the list).
- ``/ui/tasks/{id}``: buttons ``Run now``, ``Pause``, ``Resume``, ``Snooze`` (with a
  ``minutes`` field, default 60), ``Cancel`` (only those that apply to the task's status).
  ``Run now`` redirects (303) to the new run's page ``/ui/runs/{run_id}``; the task page also
  links its latest run as ``data-testid="latest-run"`` (refreshed every 3 s). Timeline rows
  ``data-testid="occurrence"``; a change of UTC offset is a row ``data-testid="dst-change"``.
- ``/ui/runs/{id}``: ``data-testid="run-status"`` holds the status as domain.runs.RunStatus
  names it (queued, running, awaiting_approval, waiting, deferred, succeeded, dead, canceled,
  deduplicated), refreshed every second by htmx while the run can still change (queued,
  running, deferred, waiting); steps are ``data-testid="step"``; a durable wait is
  ``data-testid="wait"`` (what it waits for, until when); buttons ``Approve`` and ``Reject``
  (awaiting_approval), ``Retry`` (dead), ``Cancel run`` (not yet finished).
- ``/ui/runs?status=&task_id=&cursor=``: rows ``data-testid="run-row"``; the button
  ``Retry all dead`` opens a confirmation page ``/ui/runs/retry-dead`` (``data-testid=
  "dead-count"`` says how many) whose button ``Confirm retry`` retries them (at most 500 per
  click), then redirects to ``/ui/runs?done=retried_all&n=N``.
- ``/ui`` (overview, refreshed every 5 s): ``data-testid`` ``health``, ``timer-lag``,
  ``ready-backlog``, ``workers-alive``, ``task-counts``, ``run-counts``, rows ``firing`` (next
  10 firings), run tables of pending approvals, waiting runs and dead runs, ``dead-letter``
  rows (admin).
- ``/ui/events?stream=&type=&actor=&correlation_id=&after=&before=&since=&until=``: rows
  ``data-testid="event-row"``, newest first, each with ``<details data-testid="event-json">``.
- After an action a notice ``data-testid="notice"`` says what happened; refusals are HTML
  pages with the status (4xx) and ``data-testid="error"`` naming the field.
- Times read ``2026-03-29 08:30 +03:00 Europe/Chisinau`` (seconds when not zero) inside
  ``<time datetime="<UTC ISO>">``: the task's zone on task and run pages, UTC on the events page.
- Sessions: cookie ``ordinaut_session`` (HttpOnly, SameSite=Strict, Path=/ui, 12 h); forms
  carry ``csrf_token`` (htmx sends it as ``X-CSRF-Token``). Migration 0018 adds ``ui_session``
  and the covering index ``runs_recent`` for the overview's 24 h counts.
"""
