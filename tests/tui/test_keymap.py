"""The config file, key remapping, the help screen, the command palette and themes."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.command import CommandPalette

from tests.tui.test_app import console, notifications, settle, world_services
from tui.config import CONFIG_ENV, default_config_path, load_config, save_theme
from tui.screens.campaign import CampaignScreen
from tui.screens.campaigns import CampaignListScreen
from tui.screens.help import HelpScreen
from tui.screens.new_campaign import NewCampaignDialog


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def help_lines(app: object) -> list[str]:
    screen = app.screen  # type: ignore[attr-defined]
    assert isinstance(screen, HelpScreen)
    return str(screen.query_one("#help-keys").render()).splitlines()


def test_config_path_follows_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "lcc.toml"))
    assert default_config_path() == tmp_path / "lcc.toml"
    monkeypatch.delenv(CONFIG_ENV)
    assert default_config_path().name == "config.toml"
    assert "lcc" in default_config_path().parts


def test_a_good_config_file(tmp_path: Path) -> None:
    path = write(
        tmp_path / "config.toml",
        'theme = "ansi-dark"\nmouse = false\nanimations = "basic"\n\n'
        '[keymap]\n"campaigns.new" = "ctrl+n"\n"app.help" = "f1, question_mark"\n',
    )
    config = load_config(path)
    assert config.problems == []
    assert config.theme == "ansi-dark"
    assert config.mouse is False
    assert config.animations == "basic"
    assert config.keymap == {"campaigns.new": "ctrl+n", "app.help": "f1,question_mark"}


def test_a_missing_file_is_all_defaults(tmp_path: Path) -> None:
    config = load_config(tmp_path / "absent.toml")
    assert (config.theme, config.mouse, config.animations, config.keymap) == (
        None,
        True,
        "none",
        {},
    )
    assert config.problems == []


def test_bad_config_files_name_the_file_and_the_key(tmp_path: Path) -> None:
    broken = write(tmp_path / "broken.toml", 'theme = "ansi-dark\n')
    [problem] = load_config(broken).problems
    assert problem.source == str(broken) and "not valid TOML" in str(problem)

    wrong = write(
        tmp_path / "wrong.toml",
        'mouse = "no"\nanimations = 3\ncolour = "red"\ntheme = ""\n'
        '[keymap]\n"campaigns.new" = 5\n"bad id!" = "x"\n"app.help" = "ctrl+"\n',
    )
    config = load_config(wrong)
    where = {problem.location: str(problem) for problem in config.problems}
    assert set(where) == {
        "mouse",
        "animations",
        "colour",
        "theme",
        "keymap.campaigns.new",
        "keymap.bad id!",
        "keymap.app.help",
    }
    assert all(message.startswith(f"{wrong}: ") for message in where.values())
    assert config.mouse is True and config.keymap == {}  # the defaults stand in


async def test_bad_config_is_a_notification_not_a_crash(data_dir: Path, tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", 'theme = "no-such-theme"\nmouse = 1\n')
    app = console(world_services(data_dir), config=load_config(path))
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot)
        shown = notifications(app)
        assert f"{path}: mouse: expected true or false" in shown
        [theme] = [m for m in shown if m.startswith(f"{path}: theme: no theme 'no-such-theme'")]
        assert "ansi-dark" in theme
        assert isinstance(app.screen, CampaignListScreen)


async def test_keymap_from_the_config_file_remaps_keys(data_dir: Path, tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", '[keymap]\n"campaigns.new" = "ctrl+n"\n')
    app = console(world_services(data_dir), config=load_config(path))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        assert isinstance(app.screen, CampaignListScreen), "n no longer opens the dialog"
        await pilot.press("ctrl+n")
        await settle(pilot)
        assert isinstance(app.screen, NewCampaignDialog)


async def test_help_lists_the_bindings_in_force_with_remapped_keys(
    data_dir: Path, tmp_path: Path
) -> None:
    path = write(tmp_path / "c.toml", '[keymap]\n"campaigns.new" = "ctrl+n"\n')
    app = console(world_services(data_dir), config=load_config(path))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("f1")
        await settle(pilot)
        lines = help_lines(app)
        [new] = [line for line in lines if "campaigns.new" in line]
        assert new.split() == ["^n", "New", "campaigns.new"]
        assert any(line.split()[:2] == ["/", "Search"] for line in lines)
        assert any("app.quit" in line and "^q" in line for line in lines)
        assert str(path) in str(app.screen.query_one("#help-note").render())
        await pilot.press("escape")
        await settle(pilot)
        # on the campaign screen, help shows that screen's bindings, whoever declared them
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, CampaignScreen)
        await pilot.press("question_mark")
        await settle(pilot)
        lines = help_lines(app)
        assert not any("campaigns.new" in line for line in lines)
        assert any("campaign.back" in line for line in lines)
        await pilot.press("f1")  # the help key closes it again
        await settle(pilot)
        assert isinstance(app.screen, CampaignScreen)


async def test_palette_lists_the_actions_and_runs_one(data_dir: Path) -> None:
    app = console(world_services(data_dir))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+p")
        await settle(pilot)
        palette = app.screen
        assert isinstance(palette, CommandPalette)
        await pilot.press(*"new")
        await settle(pilot)
        await pilot.pause(0.3)
        shown = [str(option.prompt) for option in palette.query_one("CommandList").options]  # type: ignore[attr-defined]
        assert any(prompt.startswith("New") for prompt in shown)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, NewCampaignDialog)


async def test_palette_opens_a_campaign_by_name_and_switches_theme(data_dir: Path) -> None:
    app = console(world_services(data_dir))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+p", *"open campaign autumn")
        await settle(pilot)
        await pilot.pause(0.3)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, CampaignScreen)
        assert app.screen.campaign_id == "cmp-000000000004"
        await pilot.press("ctrl+p", *"switch theme")
        await settle(pilot)
        await pilot.pause(0.3)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press(*"ansi-light")
        await settle(pilot)
        await pilot.pause(0.3)
        await pilot.press("enter")
        await settle(pilot)
        assert app.theme == "ansi-light"


async def test_theme_is_persisted_only_when_the_operator_switches(
    data_dir: Path, tmp_path: Path
) -> None:
    original = '# my settings\ntheme = "ansi-dark"\n\n[keymap]\n"campaigns.new" = "ctrl+n"\n'
    path = write(tmp_path / "c.toml", original)
    app = console(world_services(data_dir), config=load_config(path))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert app.theme == "ansi-dark"
        assert path.read_text() == original, "starting up never rewrites the file"
        app.theme = "ansi-light"
        await settle(pilot)
    assert path.read_text() == original.replace('"ansi-dark"', '"ansi-light"')
    assert load_config(path).keymap == {"campaigns.new": "ctrl+n"}


def test_save_theme_adds_the_line_before_any_table(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", '[keymap]\n"app.quit" = "ctrl+q"\n')
    save_theme(path, "nord")
    assert path.read_text() == 'theme = "nord"\n[keymap]\n"app.quit" = "ctrl+q"\n'
    fresh = tmp_path / "new" / "config.toml"
    save_theme(fresh, "ansi-light")
    assert load_config(fresh).theme == "ansi-light"


async def test_unknown_binding_ids_in_the_keymap_are_reported(
    data_dir: Path, tmp_path: Path
) -> None:
    path = write(tmp_path / "c.toml", '[keymap]\n"campaigns.nwe" = "ctrl+n"\n')
    app = console(world_services(data_dir), config=load_config(path))
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot)
        app._check_keymap_ids()
        await pilot.pause()
        assert any(
            m.startswith(f"{path}: keymap.campaigns.nwe: no binding has this id")
            for m in notifications(app)
        )


async def test_animations_are_off_unless_configured(data_dir: Path, tmp_path: Path) -> None:
    assert console(world_services(data_dir)).animation_level == "none"
    path = write(tmp_path / "c.toml", "animations = true\n")
    app = console(world_services(data_dir.parent / "other"), config=load_config(path))
    assert app.animation_level == "full"
