"""A small Hub-compatible server for the upload tests: `python hub_server.py --token T`.

It implements what huggingface_hub's upload and download paths call, kept in memory:
repo creation (with the Hub's first commit, a .gitattributes on main), branches, YAML
validation, preupload (every file is "regular", so no LFS, and the blob id of the file already
at that path is returned), NDJSON commits with base64 content and deletions (refused with 412
when their header's parentCommit is no longer the branch's head), repo info, tree listings and
file resolution with the headers ``hf_hub_download`` reads (X-Repo-Commit, ETag,
Content-Length). Errors carry the Hub's ``X-Error-Code`` header, so the client raises its real
exceptions. Writes need ``Authorization: Bearer T``; a private repo needs it for reading too; a
gated repo refuses file downloads. Test controls under ``/_test/`` gate a repo, or commit a file
at its next preupload (another push landing meanwhile). It prints ``port N`` once it listens on
127.0.0.1.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse

import yaml

GITATTRIBUTES = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"
REPO = r"(?P<repo>[^/]+/[^/]+)"
REV = r"(?P<rev>[^/]+)"


@dataclass
class Repo:
    private: bool = False
    gated: bool = False
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)  # oid -> files
    branches: dict[str, str] = field(default_factory=dict)  # name -> oid
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S.000Z"))


def blob_oid(data: bytes) -> str:
    """The git blob id, as the Hub reports for a regular file."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class State:
    def __init__(self, token: str):
        self.token = token
        self.repos: dict[str, Repo] = {}
        self.lock = threading.Lock()
        # repo -> (branch, path, content): committed when the repo's next preupload comes, as a
        # push by someone else that lands while this one is being sent.
        self.races: dict[str, tuple[str, str, bytes]] = {}


class Handler(BaseHTTPRequestHandler):
    state: State
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # quiet: the tests read results, not logs
        pass

    # -- plumbing ----------------------------------------------------------------------------
    def _send(self, status: int, body: bytes = b"", headers: dict | None = None, *, head=False):
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _json(self, status: int, data, headers: dict | None = None, *, head=False):
        self._send(
            status,
            json.dumps(data).encode(),
            {"Content-Type": "application/json", **(headers or {})},
            head=head,
        )

    def _error(self, status: int, code: str | None, message: str, *, head=False):
        headers = {"X-Error-Message": message}
        if code:
            headers["X-Error-Code"] = code
        self._json(status, {"error": message}, headers, head=head)

    def _authorized(self) -> bool:
        return self.headers.get("Authorization", "") == f"Bearer {self.state.token}"

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _repo(self, repo_id: str, *, write=False, head=False) -> Repo | None:
        """The repo, or None after answering as the Hub does (unknown and private look alike)."""
        repo = self.state.repos.get(repo_id)
        if write and not self._authorized():
            self._error(401, None, "Invalid credentials in Authorization header", head=head)
            return None
        if repo is None or (repo.private and not self._authorized()):
            self._error(
                401 if not self._authorized() else 404,
                "RepoNotFound",
                "Repository not found",
                head=head,
            )
            return None
        return repo

    def _commit(self, repo: Repo, rev: str, *, head=False) -> str | None:
        rev = unquote(rev)
        oid = repo.branches.get(rev) or (rev if rev in repo.commits else None)
        if oid is None:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}", head=head)
        return oid

    def _url(self, path: str) -> str:
        return f"http://{self.headers.get('Host')}/{path}"

    # -- routes ------------------------------------------------------------------------------
    def do_HEAD(self):
        self._get(head=True)

    def do_GET(self):
        self._get(head=False)

    def _get(self, head: bool):
        path = urlparse(self.path).path
        if m := re.fullmatch(rf"/api/models/{REPO}(?:/revision/{REV})?", path):
            return self._info(m["repo"], m["rev"] or "main", head)
        if m := re.fullmatch(rf"/api/models/{REPO}/tree/{REV}(?:/(?P<sub>.*))?", path):
            return self._tree(m["repo"], m["rev"], (m["sub"] or "").strip("/"), head)
        if m := re.fullmatch(rf"/{REPO}/resolve/{REV}/(?P<file>.+)", path):
            return self._resolve(m["repo"], m["rev"], unquote(m["file"]), head)
        self._error(404, None, f"no route {path}", head=head)

    def do_POST(self):
        path = urlparse(self.path).path
        body = self._body()
        with self.state.lock:
            if path == "/api/repos/create":
                return self._create(json.loads(body))
            if path == "/api/validate-yaml":
                return self._validate_yaml(json.loads(body))
            if m := re.fullmatch(rf"/api/models/{REPO}/preupload/{REV}", path):
                return self._preupload(m["repo"], unquote(m["rev"]), json.loads(body))
            if m := re.fullmatch(rf"/api/models/{REPO}/branch/{REV}", path):
                return self._branch(m["repo"], unquote(m["rev"]), json.loads(body or b"{}"))
            if m := re.fullmatch(rf"/api/models/{REPO}/commit/{REV}", path):
                return self._commit_files(m["repo"], unquote(m["rev"]), body)
            if m := re.fullmatch(rf"/_test/gate/{REPO}", path):  # test control: gate a repo
                self.state.repos[m["repo"]].gated = True
                return self._json(200, {})
            if m := re.fullmatch(rf"/_test/race/{REPO}", path):  # test control: see State.races
                race = json.loads(body)
                content = race["content"].encode()
                self.state.races[m["repo"]] = (race["branch"], race["path"], content)
                return self._json(200, {})
        self._error(404, None, f"no route {path}")

    # -- reads -------------------------------------------------------------------------------
    def _info(self, repo_id: str, rev: str, head: bool):
        repo = self._repo(repo_id, head=head)
        if repo is None:
            return
        oid = self._commit(repo, rev, head=head)
        if oid is None:
            return
        files = repo.commits[oid]
        self._json(
            200,
            {
                "id": repo_id,
                "modelId": repo_id,
                "author": repo_id.split("/")[0],
                "sha": oid,
                "private": repo.private,
                "gated": "auto" if repo.gated else False,
                "disabled": False,
                "tags": [],
                "downloads": 0,
                "likes": 0,
                "createdAt": repo.created,
                "lastModified": repo.created,
                "siblings": [{"rfilename": p} for p in sorted(files)],
            },
            head=head,
        )

    def _tree(self, repo_id: str, rev: str, sub: str, head: bool):
        repo = self._repo(repo_id, head=head)
        if repo is None or (oid := self._commit(repo, rev, head=head)) is None:
            return
        prefix = f"{sub}/" if sub else ""
        entries = [
            {"type": "file", "oid": blob_oid(data), "size": len(data), "path": p}
            for p, data in sorted(repo.commits[oid].items())
            if p.startswith(prefix)
        ]
        self._json(200, entries, head=head)

    def _resolve(self, repo_id: str, rev: str, name: str, head: bool):
        repo = self._repo(repo_id, head=head)
        if repo is None or (oid := self._commit(repo, rev, head=head)) is None:
            return
        if repo.gated:
            return self._error(403, "GatedRepo", "Access to this repo is restricted", head=head)
        data = repo.commits[oid].get(name)
        if data is None:
            return self._error(404, "EntryNotFound", f"{name} does not exist", head=head)
        self._send(
            200,
            data,
            {
                "X-Repo-Commit": oid,
                "ETag": f'"{blob_oid(data)}"',
                "Content-Type": "application/octet-stream",
            },
            head=head,
        )

    # -- writes ------------------------------------------------------------------------------
    def _create(self, payload: dict):
        if not self._authorized():
            return self._error(401, None, "Invalid credentials in Authorization header")
        repo_id = f"{payload['organization']}/{payload['name']}"
        if repo_id in self.state.repos:
            return self._json(
                409, {"error": "You already created this model repo", "url": self._url(repo_id)}
            )
        private = payload.get("visibility") == "private" or bool(payload.get("private"))
        repo = self.state.repos[repo_id] = Repo(private=private)
        # The Hub starts every repo with one commit on main that adds a .gitattributes.
        repo.branches["main"] = self._new_commit(repo, {".gitattributes": GITATTRIBUTES})
        self._json(200, {"url": self._url(repo_id), "name": repo_id, "id": repo_id})

    def _validate_yaml(self, payload: dict):
        text = payload.get("content", "")
        match = re.match(r"---\n(.*?)\n---", text, flags=re.S)
        try:
            if match:
                yaml.safe_load(match.group(1))
        except yaml.YAMLError as exc:
            return self._json(400, {"error": f"invalid YAML metadata: {exc}"})
        self._json(200, {"errors": [], "warnings": []})

    def _preupload(self, repo_id: str, rev: str, payload: dict):
        repo = self._repo(repo_id, write=True)
        if repo is None:
            return
        if (race := self.state.races.pop(repo_id, None)) is not None:
            branch, name, content = race
            files = {**repo.commits[repo.branches[branch]], name: content}
            repo.branches[branch] = self._new_commit(repo, files)
        oid = repo.branches.get(rev)
        current = repo.commits[oid] if oid else {}
        # As the Hub does: the blob id of the file already at that path, so the client can leave
        # out what has not changed.
        files = [
            {
                "path": f["path"],
                "uploadMode": "regular",
                "shouldIgnore": False,
                "oid": blob_oid(current[f["path"]]) if f["path"] in current else None,
            }
            for f in payload["files"]
        ]
        self._json(200, {"files": files})

    def _branch(self, repo_id: str, branch: str, payload: dict):
        repo = self._repo(repo_id, write=True)
        if repo is None:
            return
        if branch in repo.branches:
            return self._error(409, None, f"branch {branch} already exists")
        start = payload.get("startingPoint") or "main"
        oid = repo.branches.get(start, start if start in repo.commits else None)
        if oid is None:  # a branch of an empty repo starts empty
            oid = self._new_commit(repo, {})
        repo.branches[branch] = oid
        self._json(200, {})

    def _new_commit(self, repo: Repo, files: dict[str, bytes]) -> str:
        digest = hashlib.sha1(str(len(repo.commits)).encode())
        for name, data in sorted(files.items()):
            digest.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
        oid = digest.hexdigest()
        repo.commits[oid] = files
        return oid

    def _commit_files(self, repo_id: str, branch: str, body: bytes):
        repo = self._repo(repo_id, write=True)
        if repo is None:
            return
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        parent = repo.branches.get(branch)
        if parent is None and repo.branches:
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {branch}")
        header = next((item["value"] for item in lines if item["key"] == "header"), {})
        expected = header.get("parentCommit")
        # As the Hub does: a commit on top of a head the branch no longer has is refused.
        if expected and not (parent or "").startswith(expected):
            return self._error(
                412, None, "A commit has happened since. Please refresh and try again."
            )
        files = dict(repo.commits[parent]) if parent else {}
        for item in lines:
            key, value = item["key"], item["value"]
            if key == "file":
                files[value["path"]] = base64.b64decode(value["content"])
            elif key == "deletedFile":
                files.pop(value["path"], None)
            elif key != "header":
                return self._error(400, None, f"this server does not handle '{key}' operations")
        oid = self._new_commit(repo, files)
        repo.branches[branch] = oid
        self._json(
            200,
            {
                "commitUrl": self._url(f"{repo_id}/commit/{oid}"),
                "commitOid": oid,
                "pullRequestUrl": None,
            },
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", required=True, help="the token that may write")
    args = parser.parse_args()
    Handler.state = State(args.token)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"port {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
