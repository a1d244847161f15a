"""Fixture parsing: every error names the file and the JSON path; unknown keys are refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from core.errors import InputError
from core.fixture import load_fixture
from core.models import ImagemapMessage, TextV2Message, UnsupportedMessage
from tests.conftest import FIXTURES


def base() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / "welcome_text.json").read_text())
    return loaded


def write(tmp_path: Path, data: Any, name: str = "f.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_welcome_fixture_parses() -> None:
    loaded = load_fixture(FIXTURES / "welcome_text.json")
    assert loaded.fixture.campaign.name == "welcome_friends"
    assert isinstance(loaded.fixture.campaign.messages[0], TextV2Message)


def test_contract_example_shape_parses(tmp_path: Path) -> None:
    data = base()
    data["campaign"]["messages"].append(
        {
            "type": "imagemap",
            "baseUrl": "https://example.com/img/spring",
            "altText": "Spring sale",
            "baseSize": {"width": 1040, "height": 1040},
            "actions": [
                {
                    "type": "uri",
                    "linkUri": "https://example.com/product?ref=banner",
                    "area": {"x": 0, "y": 0, "width": 1040, "height": 1040},
                }
            ],
        }
    )
    loaded = load_fixture(write(tmp_path, data))
    imagemap = loaded.fixture.campaign.messages[1]
    assert isinstance(imagemap, ImagemapMessage)
    assert imagemap.actions[0].type == "uri"


def test_unknown_key_names_file_and_path(tmp_path: Path) -> None:
    data = base()
    data["campaign"]["messages"][0]["txt"] = "typo"
    path = write(tmp_path, data)
    with pytest.raises(InputError) as caught:
        load_fixture(path)
    assert caught.value.source == str(path)
    assert caught.value.location == "campaign.messages[0].txt"
    assert "unknown key" in caught.value.message


def test_top_level_unknown_key(tmp_path: Path) -> None:
    data = base()
    data["expectations"] = {}
    with pytest.raises(InputError) as caught:
        load_fixture(write(tmp_path, data))
    assert caught.value.location == "expectations"


def test_missing_required_key(tmp_path: Path) -> None:
    data = base()
    del data["campaign"]["messages"][0]["text"]
    with pytest.raises(InputError) as caught:
        load_fixture(write(tmp_path, data))
    assert caught.value.location == "campaign.messages[0].text"
    assert "missing" in caught.value.message


def test_wrong_type_in_nested_area(tmp_path: Path) -> None:
    data = base()
    data["campaign"]["messages"] = [
        {
            "type": "imagemap",
            "baseUrl": "https://example.com/i",
            "altText": "a",
            "baseSize": {"width": 1040, "height": "tall"},
            "actions": [],
        }
    ]
    with pytest.raises(InputError) as caught:
        load_fixture(write(tmp_path, data))
    assert caught.value.location == "campaign.messages[0].baseSize.height"


def test_several_problems_are_all_listed(tmp_path: Path) -> None:
    data = base()
    data["campaign"]["schedul"] = {}
    data["clock"] = "not a time"
    with pytest.raises(InputError) as caught:
        load_fixture(write(tmp_path, data))
    text = caught.value.describe()
    assert "campaign.schedul" in text and "clock" in text


def test_bad_json_gives_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, '{\n  "fixture_version": 1,\n  "workspace": oops\n}')
    with pytest.raises(InputError) as caught:
        load_fixture(path)
    assert caught.value.location == "line 3, column 16"


def test_unsupported_version(tmp_path: Path) -> None:
    data = base()
    data["fixture_version"] = 2
    with pytest.raises(InputError) as caught:
        load_fixture(write(tmp_path, data))
    assert caught.value.location == "fixture_version"


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="file not found"):
        load_fixture(tmp_path / "nope.json")
    with pytest.raises(InputError, match="directory"):
        load_fixture(tmp_path)


def test_profiles_file_is_resolved_relative_to_the_fixture(tmp_path: Path) -> None:
    (tmp_path / "aud").mkdir()
    (tmp_path / "aud" / "a.csv").write_text("profile_id,line_user_id\n")
    data = base()
    data["segments"][0].pop("profiles")
    data["segments"][0]["profiles_file"] = "aud/a.csv"
    loaded = load_fixture(write(tmp_path, data))
    assert loaded.fixture.segments[0].profiles_file == str((tmp_path / "aud" / "a.csv").resolve())


def test_missing_profiles_file(tmp_path: Path) -> None:
    data = base()
    data["segments"][0].pop("profiles")
    data["segments"][0]["profiles_file"] = "nowhere.csv"
    with pytest.raises(InputError) as caught:
        load_fixture(write(tmp_path, data))
    assert caught.value.location == "segments[0].profiles_file"


def test_segment_needs_exactly_one_profile_source(tmp_path: Path) -> None:
    data = base()
    data["segments"][0]["profiles_file"] = "x.csv"
    with pytest.raises(InputError) as caught:
        load_fixture(write(tmp_path, data))
    assert caught.value.location == "segments[0]"


def test_other_message_types_parse_for_validation_to_refuse(tmp_path: Path) -> None:
    data = base()
    data["campaign"]["messages"] = [{"type": "flex", "altText": "x", "contents": {}}]
    loaded = load_fixture(write(tmp_path, data))
    assert isinstance(loaded.fixture.campaign.messages[0], UnsupportedMessage)


def test_unknown_fault_kind(tmp_path: Path) -> None:
    data = base()
    data["sandbox"]["faults"] = [{"kind": "meteor"}]
    with pytest.raises(InputError) as caught:
        load_fixture(write(tmp_path, data))
    assert caught.value.location == "sandbox.faults[0].kind"
