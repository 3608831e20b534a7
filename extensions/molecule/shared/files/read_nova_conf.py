"""Report the database and message-queue settings of a node's Nova configuration, without secrets.

Runs on a lab node. Reads JSON on stdin: {"files": ["/etc/nova/nova.conf", ...], "env_file": path or "",
"secrets": ["...", ...]}. For every option in the files whose value is a URL of a database
(mysql..., postgresql..., sqlite...) or a message queue (rabbit://, amqp://, kafka://), and for every
OS_<SECTION>__<OPTION> line of the environment file, prints the parsed URL with the password
replaced by its SHA-256; also the owner, group and mode of each file and which files contain
one of the secrets (raw or percent-encoded) anywhere.
"""

import configparser
import grp
import hashlib
import json
import os
import pwd
import re
import shlex
import sys
from urllib.parse import quote, unquote, urlsplit

DB_SCHEMES = ("mysql", "postgresql", "sqlite")
MQ_SCHEMES = ("rabbit", "amqp", "kafka")


def parse_url(url: str) -> dict:
    parts = urlsplit(url)
    hosts, users, passwords = [], [], []
    for netloc in parts.netloc.split(","):
        credentials, hostport = netloc.rsplit("@", 1) if "@" in netloc else ("", netloc)
        user, password = credentials.split(":", 1) if ":" in credentials else (credentials, "")
        hosts.append(hostport)
        users.append(unquote(user))
        passwords.append(hashlib.sha256(unquote(password).encode()).hexdigest() if password else "")
    return {
        "scheme": parts.scheme,
        "hosts": hosts,
        "users": sorted(set(users)),
        "password_sha256": sorted(set(passwords)),
        "path": unquote(parts.path.lstrip("/")),
        "query": parts.query,
    }


def kind(value: str) -> str:
    scheme = value.split("://", 1)[0].split("+", 1)[0] if "://" in value else ""
    if scheme in DB_SCHEMES:
        return "db"
    if scheme in MQ_SCHEMES:
        return "mq"
    return ""


def file_info(path: str) -> dict:
    st = os.stat(path)
    return {"owner": pwd.getpwuid(st.st_uid).pw_name, "group": grp.getgrgid(st.st_gid).gr_name, "mode": "%04o" % (st.st_mode & 0o7777)}


def main() -> int:
    spec = json.load(sys.stdin)
    report = {"files": {}, "db": {}, "mq": {}, "env_db": {}, "env_mq": {}, "secrets_in": [], "missing": []}
    secrets = [s for s in spec.get("secrets", []) if s]
    needles = {form for s in secrets for form in (s, quote(s, safe=""), quote(s, safe="/"))}
    for path in spec.get("files", []):
        if not os.path.exists(path):
            report["missing"].append(path)
            continue
        report["files"][path] = file_info(path)
        parser = configparser.RawConfigParser(default_section="__none__", strict=False, interpolation=None)
        parser.optionxform = str
        parser.read(path)
        for section in parser.sections():
            for option, value in parser.items(section):
                found = kind(value.strip())
                if found:
                    report[found]["%s/%s" % (section, option)] = parse_url(value.strip())
    env_file = spec.get("env_file") or ""
    if env_file:
        if os.path.exists(env_file):
            report["files"][env_file] = file_info(env_file)
            with open(env_file, encoding="utf-8") as handle:
                for line in handle:
                    match = re.match(r"^OS_([A-Z0-9_]+?)__([A-Z0-9_]+)=(.*)$", line.strip())
                    if not match:
                        continue
                    value = " ".join(shlex.split(match.group(3)))
                    found = kind(value)
                    if found:
                        key = "%s/%s" % (match.group(1).lower(), match.group(2).lower())
                        report["env_" + found][key] = parse_url(value)
        else:
            report["missing"].append(env_file)
    for path in report["files"]:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        if any(needle in text for needle in needles):
            report["secrets_in"].append(path)
    print(json.dumps(report, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
