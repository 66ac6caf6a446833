"""A small Hugging Face Hub-compatible HTTP server for tests (standard library only).

It speaks the endpoints huggingface_hub 2.x and timm use to create a repo, upload (regular files
inline in the commit, or git-LFS: batch + PUT + `lfsFile` commit lines), and download (HEAD/GET
`resolve`), with real commit history: every commit has a sha, revisions resolve by sha or branch.
The real Hub's xet upload path is not implemented (clients must set HF_HUB_DISABLE_XET=1).

Failure injection for tests: `server.fail = {"commit"}` answers the commit with HTTP 500,
`{"upload"}` answers LFS uploads with 403; `server.token` makes writes require that bearer token.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

GITATTRIBUTES = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n*.bin filter=lfs diff=lfs merge=lfs -text\n"
SHA_RE = re.compile(r"^[0-9a-f]{40}$")


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass(frozen=True)
class Entry:
    """One file in a commit: content lives in the blob store under its sha256."""

    sha256: str
    size: int
    git_oid: str
    lfs: bool


@dataclass(frozen=True)
class Commit:
    sha: str
    parent: str | None
    message: str
    files: dict[str, Entry]
    date: str


@dataclass
class Repo:
    private: bool
    branches: dict[str, str] = field(default_factory=dict)
    commits: dict[str, Commit] = field(default_factory=dict)

    def resolve(self, revision: str) -> Commit | None:
        if revision in self.branches:
            return self.commits[self.branches[revision]]
        return self.commits.get(revision) if SHA_RE.match(revision) else None


class HubError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None, commit: str | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.commit = status, message, code, commit


class HubServer:
    """The server and its state; `start()` serves on 127.0.0.1 in a daemon thread."""

    def __init__(self, root: Path, port: int = 0):
        self.root = Path(root)
        self.blobs = self.root / "blobs"
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.repos: dict[str, Repo] = {}
        self.lock = threading.RLock()
        self.lfs_suffixes: tuple[str, ...] = (".safetensors", ".bin")  # preupload answers "lfs" for these
        self.fail: set[str] = set()
        self.token: str | None = None
        self.seen_authorization: list[str] = []
        self.requests: list[tuple[str, str]] = []
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        self.httpd.daemon_threads = True
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def start(self) -> HubServer:
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # ------------------------------------------------------------ state helpers (also used by tests)

    def head(self, repo_id: str, branch: str = "main") -> str:
        with self.lock:
            return self.repos[repo_id].branches[branch]

    def history(self, repo_id: str, branch: str = "main") -> list[str]:
        """Commit shas from the branch head back to the first commit."""
        with self.lock:
            repo, sha, out = self.repos[repo_id], self.repos[repo_id].branches[branch], []
            while sha:
                out.append(sha)
                sha = repo.commits[sha].parent
            return out

    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        with self.lock:
            commit = self.repos[repo_id].resolve(revision)
            return {path: self.blob(entry.sha256) for path, entry in commit.files.items()}

    def blob(self, sha256: str) -> bytes:
        return (self.blobs / sha256).read_bytes()

    def store(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        path = self.blobs / digest
        if not path.exists():
            tmp = path.with_suffix(f".tmp{threading.get_ident()}")
            tmp.write_bytes(data)
            tmp.replace(path)
        return digest

    def create_repo(self, repo_id: str, private: bool = False) -> None:
        with self.lock:
            if repo_id in self.repos:
                raise HubError(409, "You already created this model repo")
            repo = Repo(private=private)
            self.repos[repo_id] = repo
            digest = self.store(GITATTRIBUTES)
            entry = Entry(digest, len(GITATTRIBUTES), git_blob_sha1(GITATTRIBUTES), lfs=False)
            self._commit(repo, "main", None, "initial commit", {".gitattributes": entry})

    def _commit(self, repo: Repo, branch: str, parent: str | None, message: str, files: dict[str, Entry]) -> str:
        listing = json.dumps({p: [e.sha256, e.lfs] for p, e in sorted(files.items())})
        sha = hashlib.sha1(f"{parent}\n{message}\n{listing}\n{time.time_ns()}".encode()).hexdigest()
        date = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
        repo.commits[sha] = Commit(sha, parent, message, dict(files), date)
        repo.branches[branch] = sha
        return sha

    def repo(self, repo_id: str, authorized: bool) -> Repo:
        repo = self.repos.get(repo_id)
        if repo is None or (repo.private and not authorized):
            raise HubError(404, f"Repository Not Found for url: {repo_id}", "RepoNotFound")
        return repo

    def commit_at(self, repo_id: str, revision: str, authorized: bool) -> Commit:
        commit = self.repo(repo_id, authorized).resolve(revision)
        if commit is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return commit


def _handler(server: HubServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args):
            return

        # ------------------------------------------------------------ plumbing

        def _body(self) -> bytes:
            if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                chunks = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _send(
            self,
            status: int,
            body: bytes | dict | list = b"",
            headers: dict[str, str] | None = None,
            content_type: str = "application/json",
            length: int | None = None,
        ) -> None:
            if isinstance(body, (dict, list)):
                body = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body) if length is None else length))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _error(self, error: HubError) -> None:
            headers = {"X-Error-Message": error.message}
            if error.code:
                headers["X-Error-Code"] = error.code
            if error.commit:
                headers["X-Repo-Commit"] = error.commit
            self._send(error.status, {"error": error.message}, headers)

        def _authorized(self) -> bool:
            auth = self.headers.get("Authorization")
            if auth:
                server.seen_authorization.append(auth)
            return server.token is None or auth == f"Bearer {server.token}"

        def _require_write(self) -> None:
            if not self._authorized():
                raise HubError(401, "Invalid credentials in Authorization header")

        def _dispatch(self) -> None:
            split = urlsplit(self.path)
            parts = [unquote(p) for p in split.path.split("/")[1:]]
            query = parse_qs(split.query)
            body = self._body() if self.command in ("POST", "PUT") else b""
            server.requests.append((self.command, split.path))
            try:
                with server.lock:
                    self._route(parts, query, body)
            except HubError as error:
                self._error(error)

        do_GET = do_HEAD = do_POST = do_PUT = _dispatch

        # ------------------------------------------------------------ routes

        def _route(self, parts: list[str], query: dict, body: bytes) -> None:
            method = self.command
            if parts[:3] == ["api", "repos", "create"] and method == "POST":
                return self._create(json.loads(body))
            if parts[:2] == ["api", "validate-yaml"] and method == "POST":
                return self._validate_yaml(json.loads(body))
            if parts[:2] == ["api", "models"] and len(parts) >= 4:
                repo_id, rest = f"{parts[2]}/{parts[3]}", parts[4:]
                if not rest and method == "GET":
                    return self._info(repo_id, "main")
                if rest[:1] == ["revision"] and method == "GET":
                    return self._info(repo_id, "/".join(rest[1:]))
                if rest[:1] == ["tree"] and method == "GET":
                    return self._tree(repo_id, rest[1], "/".join(rest[2:]))
                if rest[:1] == ["preupload"] and method == "POST":
                    return self._preupload(repo_id, rest[1], json.loads(body))
                if rest[:1] == ["commit"] and method == "POST":
                    return self._commit(repo_id, rest[1], body)
                if rest[:1] == ["branch"] and method == "POST":
                    return self._branch(repo_id, "/".join(rest[1:]), json.loads(body or b"{}"))
            if len(parts) >= 2 and parts[1].endswith(".git") and parts[2:] == ["info", "lfs", "objects", "batch"]:
                return self._lfs_batch(f"{parts[0]}/{parts[1][:-4]}", json.loads(body))
            if parts[:1] == ["lfs-upload"] and method == "PUT":
                return self._lfs_put(parts[1], body)
            if len(parts) >= 5 and parts[2] == "resolve" and method in ("GET", "HEAD"):
                return self._resolve(f"{parts[0]}/{parts[1]}", parts[3], "/".join(parts[4:]))
            raise HubError(404, f"no route for {method} {self.path}")

        def _create(self, payload: dict) -> None:
            self._require_write()
            repo_id = f"{payload['organization']}/{payload['name']}" if payload.get("organization") else payload["name"]
            url = f"{server.url}/{repo_id}"
            if repo_id in server.repos:  # like the Hub: 409, with the url (create_repo(exist_ok=True) reads it)
                return self._send(409, {"error": "You already created this model repo", "url": url})
            server.create_repo(repo_id, private=payload.get("visibility") == "private" or bool(payload.get("private")))
            self._send(200, {"url": url, "name": repo_id, "id": repo_id})

        def _validate_yaml(self, payload: dict) -> None:
            content = payload.get("content", "")
            match = re.match(r"^---\n(.*?)\n---\n", content, re.S)
            try:
                meta = yaml.safe_load(match.group(1)) if match else {}
                if meta is not None and not isinstance(meta, dict):
                    raise yaml.YAMLError("metadata must be a mapping")
            except yaml.YAMLError as error:
                return self._send(400, {"errors": [{"message": f"invalid YAML: {error}"}]})
            warnings = [] if match else [{"message": "empty or missing yaml metadata in repo card"}]
            self._send(200, {"errors": [], "warnings": warnings})

        def _info(self, repo_id: str, revision: str) -> None:
            commit = server.commit_at(repo_id, revision, self._authorized())
            siblings = [
                {
                    "rfilename": path,
                    "size": e.size,
                    "blobId": e.git_oid,
                    **({"lfs": {"size": e.size, "sha256": e.sha256, "pointerSize": 134}} if e.lfs else {}),
                }
                for path, e in sorted(commit.files.items())
            ]
            repo = server.repos[repo_id]
            self._send(
                200,
                {
                    "_id": hashlib.md5(repo_id.encode()).hexdigest()[:24],
                    "id": repo_id,
                    "modelId": repo_id,
                    "author": repo_id.split("/")[0],
                    "sha": commit.sha,
                    "lastModified": commit.date,
                    "private": repo.private,
                    "disabled": False,
                    "gated": False,
                    "tags": [],
                    "siblings": siblings,
                },
            )

        def _tree(self, repo_id: str, revision: str, prefix: str) -> None:
            commit = server.commit_at(repo_id, revision, self._authorized())
            items = [
                {
                    "type": "file",
                    "oid": e.git_oid,
                    "size": e.size,
                    "path": path,
                    **({"lfs": {"oid": e.sha256, "size": e.size, "pointerSize": 134}} if e.lfs else {}),
                }
                for path, e in sorted(commit.files.items())
                if not prefix or path.startswith(prefix.rstrip("/") + "/")
            ]
            self._send(200, items)

        def _preupload(self, repo_id: str, revision: str, payload: dict) -> None:
            self._require_write()
            commit = server.commit_at(repo_id, revision, True)
            files = []
            for item in payload["files"]:
                lfs = item["path"].endswith(server.lfs_suffixes) and item["size"] > 0
                existing = commit.files.get(item["path"])
                oid = None if existing is None else (existing.sha256 if existing.lfs else existing.git_oid)
                files.append(
                    {"path": item["path"], "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False, "oid": oid}
                )
            self._send(200, {"files": files, "commitOid": commit.sha})

        def _lfs_batch(self, repo_id: str, payload: dict) -> None:
            self._require_write()
            server.repo(repo_id, True)
            objects = []
            for obj in payload["objects"]:
                if (server.blobs / obj["oid"]).exists():
                    objects.append({"oid": obj["oid"], "size": obj["size"]})
                else:
                    href = f"{server.url}/lfs-upload/{obj['oid']}"
                    objects.append(
                        {
                            "oid": obj["oid"],
                            "size": obj["size"],
                            "authenticated": True,
                            "actions": {"upload": {"href": href, "header": {}}},
                        }
                    )
            self._send(200, {"transfer": "basic", "objects": objects}, content_type="application/vnd.git-lfs+json")

        def _lfs_put(self, oid: str, body: bytes) -> None:
            if "upload" in server.fail:
                raise HubError(403, "injected upload failure")
            if hashlib.sha256(body).hexdigest() != oid:
                raise HubError(400, "uploaded content does not match its sha256")
            server.store(body)
            self._send(200, b"", content_type="text/plain")

        def _branch(self, repo_id: str, branch: str, payload: dict) -> None:
            self._require_write()
            repo = server.repo(repo_id, True)
            if branch in repo.branches:
                raise HubError(409, f"Reference {branch} already exists")
            start = server.commit_at(repo_id, payload.get("startingPoint") or "main", True)
            repo.branches[branch] = start.sha
            self._send(200, {})

        def _commit(self, repo_id: str, revision: str, body: bytes) -> None:
            self._require_write()
            repo = server.repo(repo_id, True)
            if revision not in repo.branches:
                raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
            head = repo.commits[repo.branches[revision]]
            lines = [json.loads(line) for line in body.splitlines() if line.strip()]
            if not lines or lines[0].get("key") != "header":
                raise HubError(400, "the commit payload must start with a header line")
            header = lines[0]["value"]
            if header.get("parentCommit") and header["parentCommit"] != head.sha:
                raise HubError(412, "parentCommit is not the head of the branch")
            files = dict(head.files)
            for line in lines[1:]:  # validate everything before changing anything
                value = line["value"]
                if line["key"] == "file":
                    data = base64.b64decode(value["content"])
                    files[value["path"]] = Entry(server.store(data), len(data), git_blob_sha1(data), lfs=False)
                elif line["key"] == "lfsFile":
                    blob = server.blobs / value["oid"]
                    if not blob.exists() or ("size" in value and blob.stat().st_size != value["size"]):
                        raise HubError(422, f"LFS object {value['oid']} for {value['path']} was not uploaded")
                    pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{value['oid']}\nsize {blob.stat().st_size}\n"
                    files[value["path"]] = Entry(
                        value["oid"], blob.stat().st_size, git_blob_sha1(pointer.encode()), lfs=True
                    )
                elif line["key"] == "deletedFile":
                    if files.pop(value["path"], None) is None:
                        raise HubError(404, "A file with this name doesn't exist", "EntryNotFound")
                else:
                    raise HubError(400, f"unsupported commit operation {line['key']!r}")
            if "commit" in server.fail:
                raise HubError(500, "injected commit failure")
            sha = server._commit(repo, revision, head.sha, header.get("summary", ""), files)
            self._send(
                200,
                {
                    "success": True,
                    "commitOid": sha,
                    "commitUrl": f"{server.url}/{repo_id}/commit/{sha}",
                    "commitMessage": header.get("summary", ""),
                },
            )

        def _resolve(self, repo_id: str, revision: str, path: str) -> None:
            commit = server.commit_at(repo_id, revision, self._authorized())
            entry = commit.files.get(path)
            if entry is None:
                raise HubError(404, f"Entry not found: {path}", "EntryNotFound", commit=commit.sha)
            data = b"" if self.command == "HEAD" else server.blob(entry.sha256)
            headers = {"X-Repo-Commit": commit.sha, "Accept-Ranges": "bytes"}
            if entry.lfs:
                headers.update(
                    {
                        "ETag": f'"{entry.sha256}"',
                        "X-Linked-Etag": f'"{entry.sha256}"',
                        "X-Linked-Size": str(entry.size),
                    }
                )
            else:
                headers["ETag"] = f'"{entry.git_oid}"'
            start = 0
            match = re.match(r"bytes=(\d+)-$", self.headers.get("Range") or "")
            if match and self.command == "GET":
                start = int(match.group(1))
                headers["Content-Range"] = f"bytes {start}-{entry.size - 1}/{entry.size}"
                return self._send(206, data[start:], headers, "application/octet-stream")
            self._send(200, data, headers, "application/octet-stream", length=entry.size)

    return Handler
