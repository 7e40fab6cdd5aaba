"""What a language model reads about the tools: schedule syntax, DST policy, errors."""

from __future__ import annotations

SCHEDULES = """\
Schedules: `schedule_kind` + `schedule_expr`, evaluated in local wall time of `timezone` (an IANA \
name such as "Europe/Chisinau"; default "UTC").
- cron: five fields "minute hour day-of-month month day-of-week" (an optional leading seconds \
field), with names, ranges, steps and lists, or @hourly/@daily/@weekly/@monthly/@yearly. \
Examples: every weekday at 08:30 = "30 8 * * 1-5"; every 15 minutes = "*/15 * * * *"; \
the 1st of each month at 09:00 = "0 9 1 * *".
- rrule: an RFC 5545 RRULE (optionally with DTSTART/EXDATE/RDATE lines). Examples: every \
weekday at 08:30 = "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=8;BYMINUTE=30"; the last Friday \
of each month at 17:00 = "FREQ=MONTHLY;BYDAY=-1FR;BYHOUR=17;BYMINUTE=0".
- once: one ISO-8601 instant, e.g. "2026-12-24T18:00:00" (local to `timezone`) or \
"2026-12-24T16:00:00Z".
- event: a topic or glob of published events, e.g. "calendar.*"; optional `filter`, a JMESPath \
boolean over {topic, payload}.
- condition: `condition`, a JMESPath boolean, checked when events arrive or on `condition_cron`; \
fires when it turns from false to true.
Worked example: "every weekday at 08:30 Europe/Chisinau" -> schedule_kind "rrule", \
schedule_expr "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=8;BYMINUTE=30", timezone \
"Europe/Chisinau" (or schedule_kind "cron", schedule_expr "30 8 * * 1-5").
DST: a wall time skipped by a spring-forward jump fires once, at the first instant after the \
gap, for cron fixed-time jobs (rrule and once read it with the offset before the gap: 02:30 \
becomes 03:30), and a wall time that occurs twice fires once, at its first occurrence; cron jobs \
with a wildcard minute or hour follow real elapsed time instead (slots in the gap are skipped, \
slots in the repeated hour run in both passes)."""

PIPELINE = """\
What runs: `payload.pipeline`, a list of steps {"id", "uses" (a tool address from list_tools), \
"with" (its input), "save_as", "if" (JMESPath boolean), "timeout_seconds", "on_error"}; \
`payload.params` are inputs. Strings may hold templates: ${params.x}, ${steps.<id>.<field>}, \
${event.payload.x}, ${now}, ${now+24h}. "orchestrator.request_approval" parks the run until \
approve_run or reject_run. "orchestrator.wait_for_event" {"topic", "filter" (JMESPath over \
{event, params, steps, run}), "timeout_seconds", "on_timeout": "fail"|"default", "default"} \
parks the run (status waiting) until a matching event (its output) or the timeout; \
"orchestrator.sleep" {"seconds"} or {"until": "${now+2h}"} parks it until then."""

ERRORS = """\
Errors come back as a tool error whose structured content is a problem document {status, \
title, detail, errors: [{field, reason}]}: 422 = an argument breaks a rule (`field` names it; \
fix it and call again); 403 = your token lacks the scope this tool needs, or a step uses a \
tool outside your scopes; 404 = no such task or run visible to you; 409 = the current state \
refuses it (e.g. the run is not awaiting approval, or expected_version is stale)."""
