"""Policy versions: every upload path (CLI, Slack, Teams, HTTP) comes through here."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bot.ingest import READERS, read_policy
from bot.models import PolicyError
from bot.storage import Storage, VersionInfo, content_hash


@dataclass(frozen=True)
class UploadResult:
    version: VersionInfo
    created: bool  # False when the same content was already stored as a version


class PolicyLibrary:
    def __init__(self, storage: Storage, max_upload_bytes: int = 10 * 1024 * 1024) -> None:
        self.storage = storage
        self.max_upload_bytes = max_upload_bytes

    def upload(
        self, filename: str, data: bytes, *, uploaded_by: str = "", name: str | None = None
    ) -> UploadResult:
        """Read and store a new version (not yet active). Bad input changes nothing."""
        if len(data) > self.max_upload_bytes:
            limit = self.max_upload_bytes / (1024 * 1024)
            raise PolicyError(f"{filename} is larger than the {limit:g} MB upload limit.")
        parsed = read_policy(filename, data, name=name)
        digest = content_hash(data)
        existing = self.storage.find_version(parsed.name, digest)
        if existing is not None:
            return UploadResult(existing, created=False)
        version_id = self.storage.add_version(
            parsed, source_name=filename, digest=digest, uploaded_by=uploaded_by
        )
        return UploadResult(self.storage.version(version_id), created=True)

    def activate(self, version_id: int) -> VersionInfo:
        try:
            return self.storage.activate_version(version_id)
        except KeyError:
            raise PolicyError(f"There is no policy version {version_id}.") from None

    def load_file(
        self, path: Path, *, uploaded_by: str = "", name: str | None = None, activate: bool = True
    ) -> UploadResult:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise PolicyError(f"No such file: {path}") from None
        except IsADirectoryError:
            raise PolicyError(f"{path} is a folder, not a policy file.") from None
        except OSError as error:
            raise PolicyError(f"Cannot read {path}: {error.strerror}") from None
        result = self.upload(path.name, data, uploaded_by=uploaded_by, name=name)
        if activate and result.version.status != "active":
            return UploadResult(self.activate(result.version.id), result.created)
        return result

    def load_bundled(self, folder: Path) -> list[VersionInfo]:
        """Load and activate every policy file in a folder (the bundled default policy)."""
        files = (
            sorted(p for p in folder.iterdir() if p.suffix.lower() in READERS)
            if folder.is_dir()
            else []
        )
        if not files:
            raise PolicyError(f"No policy files found in {folder}.")
        return [self.load_file(path, uploaded_by="bundled").version for path in files]
