# -*- coding: utf-8 -*-
# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)
"""Read oslo.config-style files the way Nova does, edit one nova.conf without losing anything, and find and
mask the secrets in one.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
"""

from __future__ import annotations

import os
import re


class ConfigError(ValueError):
    """A config file that cannot be read or parsed."""


def _normalise_section(name):
    # oslo.config: section names are case-insensitive except DEFAULT.
    return name if name == 'DEFAULT' else name.lower()


def parse_ini(text, filename='<string>'):
    """Parse like oslo_config.iniparser: returns {section: {key: [values...]}} (multi-valued keys keep all).

    Inline comments are NOT stripped (oslo.config keeps them as part of the value), blank lines end
    multi-line values, and indented lines continue the previous value.
    """
    sections = {}
    section = None
    key, value = None, []

    def flush():
        if key is None:
            return
        if section is None:
            raise ConfigError(f'{filename}: option {key!r} appears before any [section]')
        sections.setdefault(section, {}).setdefault(key, []).append('\n'.join(value))

    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip()
        if not line:
            flush()
            key, value = None, []
            continue
        if line.startswith((' ', '\t')):
            if key is None:
                raise ConfigError(f'{filename}:{lineno}: unexpected continuation line')
            value.append(line.lstrip())
            continue
        flush()
        key, value = None, []
        if line.startswith('['):
            if not line.endswith(']') or len(line) <= 2:
                raise ConfigError(f'{filename}:{lineno}: invalid section header {line!r}')
            section = _normalise_section(line[1:-1])
            sections.setdefault(section, {})
        elif line.startswith(('#', ';')):
            continue
        else:
            colon, equal = line.find(':'), line.find('=')
            if colon < 0 and equal < 0:
                raise ConfigError(f"{filename}:{lineno}: no '=' or ':' in {line.split()[0]!r}")
            split_at = equal if colon < 0 or (0 <= equal < colon) else colon
            key = line[:split_at].strip()
            item = line[split_at + 1:].strip()
            if item and item[0] == item[-1] and item.startswith(('"', "'")):
                item = item[1:-1]
            if not key:
                raise ConfigError(f'{filename}:{lineno}: empty option name')
            value = [item]
    flush()
    return sections


_SUBSTITUTION = re.compile(r'\$(?:(\$)|\{([A-Za-z0-9_.]+)\}|([A-Za-z_][A-Za-z0-9_]*))')


class NovaConfig:
    """The merged view of several config files; later files win, as with repeated --config-file."""

    def __init__(self, sections, files):
        self._sections = sections
        self.files = files

    @classmethod
    def load(cls, paths, required=True):
        merged = {}
        read = []
        for path in paths:
            if not os.path.exists(path):
                if required:
                    raise ConfigError(f'config file {path} does not exist; set config_files to the nova.conf files nova-manage uses')
                continue
            try:
                with open(path, encoding='utf-8') as handle:
                    parsed = parse_ini(handle.read(), path)
            except OSError as exc:
                raise ConfigError(f'cannot read config file {path}: {exc.strerror}') from None
            except UnicodeDecodeError as exc:
                raise ConfigError(f'config file {path} is not UTF-8 text (byte {exc.start} cannot be decoded); oslo.config reads nova.conf '
                                  'as UTF-8: re-encode the file (e.g. iconv -t UTF-8) or set config_files to the right file') from None
            for section, options in parsed.items():
                merged.setdefault(section, {}).update(options)
            read.append(path)
        return cls(merged, read)

    @classmethod
    def from_text(cls, text):
        return cls(parse_ini(text), [])

    def get(self, section, option, default=None):
        values = self._sections.get(_normalise_section(section), {}).get(option)
        if not values:
            return default
        return self._substitute(values[-1], section)

    def has(self, section, option):
        return bool(self._sections.get(_normalise_section(section), {}).get(option))

    def _substitute(self, value, section, depth=0):
        # oslo.config expands $opt and ${group.opt} (recursively); '$$' is a literal dollar (e.g. in a password).
        def replace(match):
            if match.group(1):
                return '$'
            name = match.group(2) or match.group(3)
            group, _dot, opt = name.rpartition('.')
            values = self._sections.get(_normalise_section(group or 'DEFAULT'), {}).get(opt)
            if not values and not group:
                values = self._sections.get(_normalise_section(section), {}).get(opt)
            if not values or depth > 10:
                return match.group(0)
            return self._substitute(values[-1], group or section, depth + 1)
        return _SUBSTITUTION.sub(replace, value)

    # The URLs the modules care about, by their Nova option names.
    @property
    def api_database_connection(self):
        return self.get('api_database', 'connection')

    @property
    def database_connection(self):
        return self.get('database', 'connection')

    @property
    def transport_url(self):
        return self.get('DEFAULT', 'transport_url')


_SECTION_LINE = re.compile(r'^\[([^\]]+)\]\s*$')
_OPTION_LINE = re.compile(r'^([^#;\s\[][^=:]*?)\s*[=:]')


class IniDocument:
    """Line-preserving editor for one nova.conf: comments, order and unrelated options stay untouched."""

    def __init__(self, text=''):
        self.lines = text.splitlines()

    def text(self):
        return '\n'.join(self.lines) + ('\n' if self.lines else '')

    def _section_bounds(self, section):
        """(start, end) line indexes of a section's body, or None; start is the header line."""
        wanted = _normalise_section(section)
        start = None
        for index, line in enumerate(self.lines):
            match = _SECTION_LINE.match(line)
            if not match:
                continue
            if start is not None:
                return start, index
            if _normalise_section(match.group(1)) == wanted:
                start = index
        return (start, len(self.lines)) if start is not None else None

    def _option_index(self, section, option):
        bounds = self._section_bounds(section)
        if bounds is None:
            return None
        found = None
        for index in range(bounds[0] + 1, bounds[1]):
            match = _OPTION_LINE.match(self.lines[index])
            if match and match.group(1).strip() == option:
                found = index  # the last assignment wins, as in oslo.config
        return found

    def get(self, section, option):
        index = self._option_index(section, option)
        if index is None:
            return None
        values = parse_ini(f'[{section}]\n{self.lines[index]}')
        return next(iter(values.values()))[option][-1]

    def set(self, section, option, value):
        """Set ``option``; returns True when the text changed."""
        new_line = f'{option} = {value}'
        index = self._option_index(section, option)
        if index is not None:
            if self.lines[index] == new_line:
                return False
            self.lines[index] = new_line
            return True
        bounds = self._section_bounds(section)
        if bounds is None:
            if self.lines and self.lines[-1].strip():
                self.lines.append('')
            self.lines.extend([f'[{section}]', new_line])
            return True
        insert_at = bounds[1]
        while insert_at - 1 > bounds[0] and not self.lines[insert_at - 1].strip():
            insert_at -= 1
        self.lines.insert(insert_at, new_line)
        return True

    def remove(self, section, option):
        """Remove every assignment of ``option`` in ``section``; returns True when the text changed."""
        changed = False
        while True:
            index = self._option_index(section, option)
            if index is None:
                return changed
            del self.lines[index]
            changed = True


# -- secrets in a whole nova.conf (for diffs and results) -----------------------------------------

# Option names whose values are secrets even without a URL around them.
SECRET_OPTION = re.compile(r'(password|passwd|secret|secret_key|fixed_key|private_key|backend_argument)$', re.IGNORECASE)
_ASSIGNMENT_LINE = re.compile(r'^(\s*)([^#;\s\[][^=:]*?)(\s*[=:]\s*)(.*)$')


def ini_secret_values(sections):
    """Secrets in parsed INI ``{section: {key: [values]}}``: (urls, plain) where urls hold passwords inside."""
    urls, plain = set(), set()
    for options in sections.values():
        for key, values in options.items():
            for value in values:
                if not value:
                    continue
                if SECRET_OPTION.search(key):
                    plain.add(value)
                elif '://' in value:
                    urls.add(value)
    return urls, plain


_COMMENT_PREFIX = re.compile(r'^(\s*[#;][#;\s]*)(.*)$')


def mask_ini_text(text, mask_url, mask='****'):
    """Mask values of secret-named options and passwords inside URLs, line by line.

    Commented-out options (``#password = ...``, ``; transport_url = ...``) are masked like live ones:
    a comment often keeps an old or example secret.
    """
    lines = []
    for line in text.splitlines(True):
        end = '\n' if line.endswith('\n') else ''
        body = line[:-1] if end else line
        prefix = ''
        comment = _COMMENT_PREFIX.match(body)
        if comment:
            prefix, body = comment.groups()
        match = _ASSIGNMENT_LINE.match(body)
        if match:
            indent, key, sep, value = match.groups()
            if SECRET_OPTION.search(key.strip()) and value:
                body = f'{indent}{key}{sep}{mask}'
            elif '//' in value:
                body = f'{indent}{key}{sep}{mask_url(value)}'
        if '//' in body:
            body = re.sub(r'(\S*//\S+)', lambda m: mask_url(m.group(1)), body)
        lines.append(prefix + body + end)
    return ''.join(lines)
