"""The shell.exec allow-list and the checks made when a task is created."""

from __future__ import annotations

import pytest

from domain.errors import RuleViolation
from domain.shell import check_executable, check_static_steps, parse_allow

ALLOW = parse_allow(" /opt/jobs/*.sh, pg_dump ,, /bin/sh")


@pytest.mark.parametrize(
    "program", ["/opt/jobs/backup.sh", "pg_dump", "/bin/sh", "/opt/jobs/./backup.sh"]
)
def test_allowed_programs(program: str) -> None:
    check_executable(program, ALLOW, "argv[0]")


@pytest.mark.parametrize(
    "program",
    [
        "/opt/jobs/sub/backup.sh",  # * stays within one directory
        "/opt/jobs/../../bin/rm",  # .. cannot climb out of an allowed directory
        "/usr/bin/pg_dump",  # a name entry allows the name, not any path ending in it
        "pg_dumpall",
        "./backup.sh",  # relative paths depend on the working directory
        "jobs/backup.sh",
        "",
    ],
)
def test_refused_programs(program: str) -> None:
    with pytest.raises(RuleViolation):
        check_executable(program, ALLOW, "argv[0]")


def test_an_empty_allow_list_refuses_everything() -> None:
    assert parse_allow("") == ()
    with pytest.raises(RuleViolation, match="nothing is allowed"):
        check_executable("/bin/true", (), "argv[0]")


def test_static_checks_reach_foreach_bodies_and_skip_templates() -> None:
    inner = {"id": "x", "uses": "shell.exec", "with": {"argv": ["/bin/rm"]}}
    steps = [
        {"id": "later", "uses": "shell.exec", "with": {"argv": ["${params.program}"]}},
        {"id": "each", "uses": "pipeline.foreach", "with": {"items_path": "a", "body": [inner]}},
    ]
    with pytest.raises(RuleViolation) as caught:
        check_static_steps(steps, "payload.pipeline", ALLOW)
    assert caught.value.field == "payload.pipeline[1].with.body[0].with.argv[0]"
