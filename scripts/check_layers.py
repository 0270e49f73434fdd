#!/usr/bin/env python3
"""Checks that rust-core's modules form a strict layer cake.

Every top-level module of the `mosaicrs` crate (rust-core/src) has a place in
LAYERS, lowest first. A module may use (through `crate::<module>` paths, in
`use` lines or inline, or names the crate root re-exports such as
`crate::Error`) only modules of lower layers; two modules of one layer must
not use each other. Inside a module, no files may depend on each other in a
circle (through `super::`, `self::` or `crate::<module>::` paths, resolved to
the file that defines or re-exports the name).

Comments, string literals and `#[cfg(test)]` items are skipped: tests may
reach anywhere. Exits 1, naming the file, the line and the modules, when a
rule is broken. Usage: python3 scripts/check_layers.py [rust-core/src]
"""

import re
import sys
from pathlib import Path

# Lowest first; a layer of several modules holds peers. ARCHITECTURE.md
# ("Layers") shows the same table.
LAYERS = [
    ["error"],
    ["files", "units"],
    ["format"],
    ["storage"],
    ["reader", "writer"],
    ["loader"],
    ["assemble"],
    ["tokens"],
    ["fuzz_targets", "testing"],
]

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
IDENT_RE = re.compile(IDENT)
ALIAS_RE = re.compile(r"\s+as\s+" + IDENT)


def strip(text):
    """The code with comments and string and char literals blanked; newlines
    stay, so line numbers stay true."""
    out = []
    i, n = 0, len(text)

    def blank(segment):
        out.append("".join("\n" if c == "\n" else " " for c in segment))

    while i < n:
        c = text[i]
        word_before = i > 0 and (text[i - 1].isalnum() or text[i - 1] == "_")
        raw = None if word_before else re.compile(r'b?r(#*)"').match(text, i)
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            blank(text[i:j])
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            blank(text[i:j])
            i = j
        elif raw:
            end = text.find('"' + raw.group(1), raw.end())
            j = n if end < 0 else end + 1 + len(raw.group(1))
            blank(text[i:j])
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            blank(text[i : j + 1])
            i = j + 1
        elif c == "'":
            # A char literal ('a', '\n', '\u{1F600}'); otherwise a lifetime.
            m = re.compile(r"'(\\u\{[0-9a-fA-F]+\}|\\.|[^\\'])'").match(text, i)
            if m:
                blank(m.group(0))
                i = m.end()
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def blank_span(code, start, end):
    return code[:start] + "".join("\n" if c == "\n" else " " for c in code[start:end]) + code[end:]


def drop_test_items(code):
    """Blanks every item marked `#[cfg(test)]` (a test module, function or
    import): tests are no part of the layering."""
    pattern = re.compile(r"#\s*\[\s*cfg\s*\(\s*test\s*\)\s*\]")
    m = pattern.search(code)
    while m:
        # The item ends at the first `;` outside braces, or at the brace
        # that closes its first `{`.
        j, depth = m.end(), 0
        while j < len(code):
            ch = code[j]
            if ch == ";" and depth == 0:
                break
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        code = blank_span(code, m.start(), j + 1)
        m = pattern.search(code, m.start() + 1)
    return code


def line_of(code, pos):
    return code.count("\n", 0, pos) + 1


def parse_paths(code, pos):
    """The paths of the use tree or path starting at `pos`, as lists of
    segments: `a::{b, c::{d, e as f}}` gives [a, b], [a, c, d], [a, c, e]."""
    n = len(code)

    def ws(i):
        while i < n and code[i].isspace():
            i += 1
        return i

    def tree(i):
        i = ws(i)
        if i < n and code[i] == "{":
            paths, i = [], i + 1
            while True:
                i = ws(i)
                if i >= n or code[i] == "}":
                    return paths, i + 1
                sub, j = tree(i)
                paths += [p for p in sub if p]
                j = ws(j)
                if j < n and code[j] == ",":
                    j += 1
                elif j < n and code[j] != "}":
                    return paths, j  # not a use tree
                i = j
        if i < n and code[i] == "*":
            return [["*"]], i + 1
        m = IDENT_RE.match(code, i)
        if not m:
            return [[]], i
        name, i = m.group(0), m.end()
        j = ws(i)
        if code.startswith("::", j) and not code.startswith("::<", j):
            sub, i = tree(j + 2)
            return [[name] + p for p in sub], i
        alias = ALIAS_RE.match(code, i)
        return [[name]], alias.end() if alias else i

    return tree(pos)[0]


def use_statements(code):
    """(start, end, paths, public) of each `use ...;` statement."""
    for m in re.finditer(r"(?<![A-Za-z0-9_])use\s+", code):
        before = code[max(0, m.start() - 24) : m.start()]
        public = bool(re.search(r"\bpub(\s*\([^)]*\))?\s*$", before))
        end = code.find(";", m.end())
        yield m.start(), end, parse_paths(code, m.end()), public


def occurrences(code, head):
    """(start, paths) of every path that begins with `head::`."""
    for m in re.finditer(r"(?<![A-Za-z0-9_:])" + head + r"\s*::\s*", code):
        yield m.start(), parse_paths(code, m.end())


class Source:
    def __init__(self, root, path):
        self.name = "rust-core/src/" + path.relative_to(root).as_posix()
        parts = list(path.relative_to(root).with_suffix("").parts)
        # The top-level module, and the file's name inside it ("mod" for
        # the module's root file: `reader/mod.rs` or `testing.rs`).
        self.module = parts[0]
        self.file = "mod" if len(parts) == 1 or parts[1:] == ["mod"] else "/".join(parts[1:])
        self.code = drop_test_items(strip(path.read_text()))


def root_reexports(lib_code, modules):
    """Names the crate root re-exports, by module: `pub use error::Error`."""
    names = {}
    for _, _, paths, _ in use_statements(lib_code):
        for segs in paths:
            if segs and segs[0] == "crate":
                segs = segs[1:]
            if len(segs) >= 2 and segs[0] in modules:
                names[segs[-1]] = segs[0]
    return names


def namespace(root_file, children):
    """The file each name of a module's root comes from: names its root file
    defines map to "mod", names it re-exports to the child file."""
    names = {}
    definition = r"\b(?:struct|enum|fn|trait|type|const|static|union)\s+(" + IDENT + ")"
    for m in re.finditer(definition, root_file.code):
        names.setdefault(m.group(1), "mod")
    for _, _, paths, _ in use_statements(root_file.code):
        for segs in paths:
            if segs and segs[0] == "self":
                segs = segs[1:]
            if len(segs) >= 2 and segs[0] in children:
                names[segs[-1]] = segs[0]
    return names


def layer_problems(sources, modules, rank, reexports):
    problems = []
    for s in sources:
        seen = set()
        for start, paths in occurrences(s.code, "crate"):
            for segs in paths:
                if not segs:
                    continue
                used = segs[0] if segs[0] in modules else reexports.get(segs[0])
                line = line_of(s.code, start)
                if used is None or used == s.module or (used, line) in seen:
                    continue
                seen.add((used, line))
                a, b = rank.get(s.module), rank.get(used)
                if a is None or b is None:
                    continue
                if b > a:
                    order = " -> ".join("/".join(g) for g in LAYERS)
                    problems.append(
                        f"{s.name}:{line}: `{s.module}` uses `{used}`, a higher layer ({order})"
                    )
                elif b == a:
                    problems.append(
                        f"{s.name}:{line}: `{s.module}` uses `{used}`, a peer in its layer"
                    )
    return problems


def file_edges(module, files):
    """(from file, to file) -> first line, for the files of one module."""
    children = {f for f in files if f != "mod" and "/" not in f}
    names = namespace(files["mod"], children)
    edges = {}

    def resolve(segs):
        if not segs:
            return None
        return segs[0] if segs[0] in children else names.get(segs[0])

    def add(frm, segs, code, pos):
        to = resolve(segs)
        if to and to != frm and to in files:
            edges.setdefault((frm, to), line_of(code, pos))

    for name, s in files.items():
        code = s.code
        for start, paths in occurrences(code, "crate"):
            for segs in paths:
                if segs[:1] == [module]:
                    add(name, segs[1:], code, start)
        if name != "mod":
            for start, paths in occurrences(code, "super"):
                for segs in paths:
                    add(name, segs, code, start)
            continue
        # The root file's own uses of its children: its private `use`
        # lines, `self::child::` and `child::` paths, and the names it
        # re-exports that its code then uses.
        body = code
        for start, end, paths, public in use_statements(code):
            if not public:
                for segs in paths:
                    add(name, segs[1:] if segs[:1] == ["self"] else segs, code, start)
            body = blank_span(body, start, end + 1)
        for start, paths in occurrences(body, "self"):
            for segs in paths:
                add(name, segs, body, start)
        for m in re.finditer(r"(?<![A-Za-z0-9_:])(" + IDENT + r")(?![A-Za-z0-9_])", body):
            word = m.group(1)
            if word in children and body.startswith("::", m.end()):
                add(name, [word], body, m.start())
            elif names.get(word, "mod") != "mod":
                add(name, [word], body, m.start())
    return edges


def circles(module, files):
    """One message per circle among the files of `module`."""
    edges = file_edges(module, files)
    graph = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
    problems, reported = [], set()
    for start in sorted(graph):
        # The shortest way back to `start`, breadth first.
        parent, queue, last = {start: None}, [start], None
        while queue and last is None:
            following = []
            for node in queue:
                if start in graph.get(node, ()):
                    last = node
                    break
                for to in sorted(graph.get(node, ())):
                    if to not in parent:
                        parent[to] = node
                        following.append(to)
            queue = following
        if last is None:
            continue
        loop = [last]
        while parent[loop[-1]] is not None:
            loop.append(parent[loop[-1]])
        loop.reverse()
        if frozenset(loop) in reported:
            continue
        reported.add(frozenset(loop))
        steps = [
            f"{files[a].name}:{edges[(a, b)]} uses {files[b].name}"
            for a, b in zip(loop, loop[1:] + loop[:1])
        ]
        problems.append(f"`{module}`: its files form a circle: " + "; ".join(steps))
    return problems


def main():
    default = Path(__file__).resolve().parent.parent / "rust-core" / "src"
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else default
    lib = strip((root / "lib.rs").read_text())
    modules = set(re.findall(r"\bmod\s+(" + IDENT + r")\s*;", lib))
    sources = [Source(root, p) for p in sorted(root.rglob("*.rs")) if p != root / "lib.rs"]
    rank = {module: level for level, group in enumerate(LAYERS) for module in group}
    script = Path(__file__).name
    problems = [
        f"rust-core/src/lib.rs: module `{m}` has no layer: add it to LAYERS in {script} "
        "and to ARCHITECTURE.md"
        for m in sorted(modules - set(rank))
    ]
    problems += [
        f"{script}: LAYERS names `{m}`, which rust-core/src/lib.rs does not declare"
        for m in sorted(set(rank) - modules)
    ]
    problems += layer_problems(sources, modules, rank, root_reexports(lib, modules))
    by_module = {}
    for s in sources:
        by_module.setdefault(s.module, {})[s.file] = s
    for module, files in sorted(by_module.items()):
        if "mod" in files and len(files) > 1:
            problems += circles(module, files)
    for p in problems:
        print(p)
    if problems:
        print(f"check_layers: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(
        f"check_layers: {len(sources)} files, {len(modules)} modules in {len(LAYERS)} layers: "
        "no upward import, no circle"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
