"""Locating the sample media: local folder, cache, checked download, one-line errors."""

from __future__ import annotations

import shutil

import pytest

from fomm_tutorial import reference


@pytest.fixture
def no_local_media(monkeypatch, tmp_path):
    """No local sample-media folder, an empty cache, and 'downloads' from a local folder."""
    monkeypatch.setattr(reference, "find_data_dir", lambda: None)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    remote = tmp_path / "remote"
    remote.mkdir()
    monkeypatch.setattr(reference, "SAMPLE_MEDIA_URL", remote.as_uri() + "/{name}")
    return remote


def test_local_folder_first(data_dir):
    assert reference.sample_media("driving.mp4") == data_dir / "driving.mp4"
    assert reference.sample_media("source.png") == data_dir / "source.png"


def test_download_checked_and_cached(no_local_media, data_dir, tmp_path):
    shutil.copy(data_dir / "source.png", no_local_media / "source.png")
    path = reference.sample_media("source.png")
    assert path == tmp_path / "cache" / "fomm_tutorial" / "sample-media" / "source.png"
    assert reference._sha256(path) == reference.SAMPLE_MEDIA_SHA256["source.png"]
    (no_local_media / "source.png").unlink()  # the second call uses the cache
    assert reference.sample_media("source.png") == path


def test_corrupt_download_refused(no_local_media, tmp_path):
    (no_local_media / "source.png").write_bytes(b"not the photo")
    with pytest.raises(FileNotFoundError, match="SHA-256") as e:
        reference.sample_media("source.png")
    assert "\n" not in str(e.value)
    cache = tmp_path / "cache" / "fomm_tutorial" / "sample-media"
    assert list(cache.iterdir()) == []  # nothing half-written or wrong is kept


def test_offline_is_one_line(no_local_media):
    with pytest.raises(FileNotFoundError, match="FOMM_DATA_DIR") as e:
        reference.sample_media("driving.mp4")
    assert "\n" not in str(e.value)


def test_unknown_name():
    with pytest.raises(ValueError, match="driving.mp4"):
        reference.sample_media("face.jpg")
