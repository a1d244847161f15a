"""`lcc preview` from outside: what people see, the exit codes, and text drawn as data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import FIXTURES, REPO

LCC = [sys.executable, "-m", "tui"]
DATA = REPO / "tests" / "data"
UTM = "utm_source=line&utm_medium=social&utm_campaign=spring_sale_2026"


def lcc(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LCC_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "100"}
    env.pop("FORCE_COLOR", None)
    return subprocess.run([*LCC, *args], capture_output=True, text=True, env=env, timeout=120)


def unwrapped(output: str) -> str:
    """Panel text with its borders and line breaks taken out, so wrapped URLs read whole."""
    lines = []
    for line in output.splitlines():
        lines.append(line.strip().strip("│").strip())
    return "".join(lines)


def test_welcome_fixture_shows_the_text_with_its_final_link(tmp_path: Path) -> None:
    result = lcc("preview", str(FIXTURES / "welcome_text.json"), tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "welcome_friends" in result.stdout
    assert "blank profile" in result.stdout
    flat = unwrapped(result.stdout)
    assert (
        "https://example.com/spring?utm_source=line&utm_medium=social&utm_campaign=welcome_friends"
        in flat
    )
    assert "/5000 UTF-16" in result.stdout


def test_text_and_imagemap_for_the_blank_profile(tmp_path: Path) -> None:
    result = lcc("preview", str(DATA / "preview_spring.json"), tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Hi there! (emoji)" in out
    assert "Spring sale for you" in out
    flat = unwrapped(out)
    assert f"https://example.com/sale?{UTM}" in flat
    # the seed's example, in the legend of the imagemap's tap areas
    assert f"https://example.com/product?ref=banner&{UTM}" in flat
    assert "tel:+81312345678" in out
    assert "SPRING" in out and "(Copy code)" in out
    # the grid: outlines and numbered areas
    assert "┌" in out and "┘" in out
    grid_lines = [line for line in out.splitlines() if "│ │" in line or "││" in line]
    assert grid_lines, out


def test_a_chosen_profile(tmp_path: Path) -> None:
    result = lcc(
        "preview", str(DATA / "preview_spring.json"), "--profile", "c-001", tmp_path=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "profile c-001" in result.stdout
    assert "Hi Aiko! (emoji)" in result.stdout
    assert "AIKO-10" in result.stdout
    assert "Spring sale for Aiko" in result.stdout


def test_markup_and_escape_sequences_in_profile_data_are_printed_as_data(tmp_path: Path) -> None:
    result = lcc(
        "preview", str(DATA / "preview_spring.json"), "--profile", "c-evil", tmp_path=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "[bold red]boss[/]" in result.stdout
    assert "\x1b" not in result.stdout
    assert "␛[2J{x}" in result.stdout


def test_an_unknown_profile_is_named_and_exits_2(tmp_path: Path) -> None:
    result = lcc(
        "preview", str(DATA / "preview_spring.json"), "--profile", "c-404", tmp_path=tmp_path
    )
    assert result.returncode == 2
    assert "c-404" in result.stderr
    assert "Traceback" not in result.stderr


def test_unreadable_input_exits_2(tmp_path: Path) -> None:
    missing = lcc("preview", str(tmp_path / "nope.json"), tmp_path=tmp_path)
    assert missing.returncode == 2 and "not found" in missing.stderr
    broken = tmp_path / "broken.json"
    broken.write_text('{"fixture_version": 1,')
    result = lcc("preview", str(broken), tmp_path=tmp_path)
    assert result.returncode == 2 and "line 1" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_template_error_draws_the_rest_and_exits_2(tmp_path: Path) -> None:
    fixture = json.loads((DATA / "preview_spring.json").read_text())
    fixture["campaign"]["messages"][0]["text"] = "Hi {{ profile.first_name "
    path = tmp_path / "template_error.json"
    path.write_text(json.dumps(fixture))
    result = lcc("preview", str(path), tmp_path=tmp_path)
    assert result.returncode == 2
    assert "campaign.messages[0].text" in result.stderr
    assert "line 1, column 4" in result.stderr
    assert "Spring sale for you" in result.stdout  # the imagemap is still drawn


def test_campaign_id_stand_in_is_explained(tmp_path: Path) -> None:
    fixture = json.loads((DATA / "preview_spring.json").read_text())
    fixture["campaign"]["utm"]["utm_campaign"] = "{{campaign.id}}"
    path = tmp_path / "by_id.json"
    path.write_text(json.dumps(fixture))
    result = lcc("preview", str(path), tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "cmp-000000000000" in result.stdout
    assert "no id until it is stored" in result.stdout
