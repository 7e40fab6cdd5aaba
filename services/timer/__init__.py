"""The timer: turns schedules into due events."""
