"""Pure domain: events, commands, decisions, schedule maths; no I/O."""
