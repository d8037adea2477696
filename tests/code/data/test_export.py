import json

import pytest

from social_reward.data.export import ExportError, is_safe_relative_path, read_manifest


def write_manifest(folder, **values):
    manifest = {"schema_version": 1, "exported_at": "2026-03-02T00:00:00Z", "source": "test"}
    manifest.update(values)
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_valid_manifest_reads(tmp_path):
    write_manifest(tmp_path)
    manifest = read_manifest(tmp_path)
    assert manifest.exported_at.isoformat() == "2026-03-02T00:00:00+00:00"
    assert json.loads(manifest.to_json())["exported_at"] == "2026-03-02T00:00:00Z"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"schema_version": 2}, r"'schema_version' is 2; rule: must be 1"),
        ({"exported_at": "yesterday"}, r"'exported_at' is 'yesterday'; rule: ISO-8601"),
        ({"exported_at": "2026-03-02T00:00:00+02:00"}, r"rule: must be in UTC"),
        ({"exported_at": "2026-03-02T00:00:00"}, r"rule: must be in UTC"),
        ({"source": 3}, r"'source' must be a string"),
    ],
)
def test_bad_manifest_values_name_file_key_and_rule(tmp_path, values, message):
    write_manifest(tmp_path, **values)
    with pytest.raises(ExportError, match=message) as error:
        read_manifest(tmp_path)
    assert "manifest.json" in str(error.value)


def test_manifest_missing_key_missing_file_and_bad_json(tmp_path):
    with pytest.raises(ExportError, match="file missing"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ExportError, match="not valid JSON"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"schema_version": 1, "source": "x"}))
    with pytest.raises(ExportError, match="'exported_at' missing"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("[1]")
    with pytest.raises(ExportError, match="must be a JSON object"):
        read_manifest(tmp_path)


@pytest.mark.parametrize(
    ("path", "safe"),
    [
        ("images/2026-01-01/a.png", True),
        ("a.webp", True),
        ("/etc/passwd", False),
        ("images/../../secret.png", False),
        ("..", False),
        ("", False),
        ("images\\a.png", False),
    ],
)
def test_path_rule(path, safe):
    assert is_safe_relative_path(path) is safe
