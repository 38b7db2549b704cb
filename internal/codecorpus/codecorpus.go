// Package codecorpus holds code samples in many languages, and Markdown pages made of
// them, for tests of syntax highlighting (deterministic output under concurrency).
package codecorpus

import (
	"fmt"
	"strings"
)

// Sample is a fenced code block's language tag and its code (ending with a newline).
type Sample struct {
	Lang string
	Code string
}

// Samples returns the code samples: one per language, each using the language's
// keywords, builtins, strings, comments and numbers, so that many lexer rules run. Some
// languages embed others (HTML with CSS and JavaScript, PHP inside HTML, ERB, Go
// templates), so that lexers that call other lexers are covered too. The result is a
// fresh slice.
func Samples() []Sample {
	return append([]Sample(nil), samples...)
}

// Page returns a Markdown document (without front matter): a heading, a paragraph,
// then the samples i, i+1, …, i+n-1 (modulo the number of samples) as fenced code
// blocks, each under a heading and followed by a short paragraph.
func Page(i, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Code page %d\n\nSamples starting at number %d.\n\n", i, i%len(samples))
	for k := range n {
		s := samples[(i+k)%len(samples)]
		fmt.Fprintf(&b, "## %s, sample %d\n\n```%s\n%s```\n\nAfter the %s block.\n\n", s.Lang, k, s.Lang, s.Code, s.Lang)
	}
	return b.String()
}

var samples = []Sample{
	{"ruby", `# A Ruby sample
require 'json'

class Greeter < Struct.new(:name)
  attr_reader :count

  def greet(times = 1)
    @count ||= 0
    times.times { |i| puts "Hello, #{name} (#{i})" }
    printf("%d\n", times)
    raise ArgumentError, 'no' if times.negative?
  end
end

puts Greeter.new('x').greet(3).inspect
p [1, 2.5, :sym, nil, true].map(&:to_s)
`},
	{"go", `package main

import (
	"fmt"
	"strings"
)

// count adds up the entries.
func count(entries []int) (total int) {
	for _, e := range entries {
		total += e * 0x1F
	}
	return total
}

func main() {
	s := strings.Repeat("ab", 3)
	fmt.Println(len(s), count([]int{1, 2, 3}), 'x', 1.5e3)
	go func() { panic(nil) }()
}
`},
	{"python", `import os
from dataclasses import dataclass

@dataclass
class Point:
    x: float = 0.0
    y: float = 0.0

    def norm(self) -> float:
        """Length of the vector."""
        return (self.x ** 2 + self.y ** 2) ** 0.5

print(len([Point(1, 2).norm() for _ in range(3)]), os.sep, f"{1+1}")
assert isinstance(None, object), 'never'
`},
	{"javascript", `// A JavaScript sample
const items = [1, 2, 3].map((x) => x * 2);
class Counter extends EventTarget {
  #n = 0;
  async inc() { this.#n++; await Promise.resolve(this.#n); return ` + "`n=${this.#n}`" + `; }
}
console.log(items, typeof undefined, /ab+c/gi.test("abbc"), JSON.stringify({a: null}));
`},
	{"typescript", `interface User { id: number; name?: string }
export function names(users: User[]): string[] {
  return users.filter((u): u is Required<User> => !!u.name).map(u => u.name);
}
type Pair<T> = [T, T];
const p: Pair<number> = [1, 2];
`},
	{"bash", `#!/usr/bin/env bash
set -euo pipefail
for f in "$@"; do
  if [[ -f "$f" ]]; then
    echo "file: ${f##*/}" | tr a-z A-Z
  fi
done
export COUNT=$(( $# + 1 ))
cat <<END
done $COUNT
END
`},
	{"yaml", `# site config
title: "My site"
baseURL: https://example.org/
paginate: 10
menus:
  main:
    - {name: News, url: /news/, weight: 1}
    - name: About
      url: /about/
anchors: &a
  x: [1, 2.5, true, null]
copy: *a
`},
	{"html", `<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <style>
    body { color: #333; margin: 0 auto; }
    .note::before { content: "\2192"; }
  </style>
  <script>
    document.addEventListener("DOMContentLoaded", () => { console.log(1 + 2); });
  </script>
</head>
<body><!-- comment --><p class="note">Hi &amp; bye</p></body>
</html>
`},
	{"css", `@media (max-width: 600px) {
  :root { --accent: rgb(10 20 30 / 50%); }
  a:hover, a:focus-visible { color: var(--accent) !important; }
}
@font-face { font-family: "X"; src: url(x.woff2) format("woff2"); }
.grid { display: grid; grid-template-columns: repeat(3, 1fr); gap: 1.5em; }
`},
	{"sql", `-- monthly totals
SELECT d.name, COUNT(*) AS n, SUM(v.amount) FILTER (WHERE v.amount > 0)
FROM votes v
JOIN districts d ON d.id = v.district_id
WHERE v.cast_at >= DATE '2026-01-01' AND d.name LIKE 'N%'
GROUP BY d.name
HAVING COUNT(*) > 10
ORDER BY n DESC;
INSERT INTO log (msg) VALUES ('it''s done');
`},
	{"rust", `use std::collections::HashMap;

#[derive(Debug, Clone)]
struct Tally<'a> { name: &'a str, votes: u64 }

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut m: HashMap<&str, u64> = HashMap::new();
    *m.entry("north").or_insert(0) += 1_000;
    let t = Tally { name: "x", votes: 0xff };
    println!("{:?} {}", t, m.len());
    Ok(())
}
`},
	{"c", `#include <stdio.h>
#define MAX 10

static int sum(const int *xs, size_t n) {
    int total = 0;
    for (size_t i = 0; i < n; ++i) total += xs[i];
    return total;
}

int main(void) {
    int xs[MAX] = {1, 2, 3};
    printf("%d\n", sum(xs, MAX)); /* print it */
    return 0;
}
`},
	{"java", `package org.example;

import java.util.List;

public final class Main {
    @Override
    public String toString() { return "Main"; }

    public static void main(String[] args) throws Exception {
        List<Integer> xs = List.of(1, 2, 3);
        long n = xs.stream().filter(x -> x > 1).count();
        System.out.println(n + 0.5f);
    }
}
`},
	{"php", `<h1><?php echo htmlspecialchars($title); ?></h1>
<?php
namespace App;
function total(array $xs): int {
    return array_sum(array_map(fn($x) => $x * 2, $xs));
}
$name = "world";
echo "Hello {$name}\n", total([1, 2, 3]);
?>
<p>footer</p>
`},
	{"erb", `<ul>
<% @items.each do |item| %>
  <li><%= item.name %> &mdash; <%= number_to_currency(item.price) %></li>
<% end %>
</ul>
`},
	{"json", `{
  "name": "stump",
  "version": 2,
  "tags": ["a", "b"],
  "nested": {"ok": true, "ratio": 0.75, "none": null}
}
`},
	{"toml", `[package]
name = "demo"
version = "0.1.0"
authors = ["A <a@example.org>"]

[dependencies]
serde = { version = "1", features = ["derive"] }
`},
	{"dockerfile", `FROM golang:1.26 AS build
WORKDIR /src
COPY . .
RUN go build -o /out/stump ./cmd/stump
FROM debian:stable-slim
COPY --from=build /out/stump /usr/local/bin/
ENTRYPOINT ["stump"]
`},
	{"makefile", `GO ?= go
.PHONY: test
test: $(wildcard *.go)
	$(GO) test -race ./...
%.o: %.c
	$(CC) -c $< -o $@
`},
	{"diff", `--- a/site.yaml
+++ b/site.yaml
@@ -1,3 +1,3 @@
 title: X
-paginate: 3
+paginate: 10
 baseURL: https://x.example.org/
`},
	{"kotlin", `data class User(val id: Int, val name: String?)
fun main() {
    val users = listOf(User(1, "a"), User(2, null))
    println(users.mapNotNull { it.name }.joinToString())
}
`},
	{"haskell", `module Main where
import Data.List (sortOn)

main :: IO ()
main = mapM_ print (sortOn negate [3, 1, 2 :: Int])
`},
	{"lua", `local function fib(n)
  if n < 2 then return n end
  return fib(n - 1) + fib(n - 2)
end
print(string.format("%d", fib(10))) -- 55
`},
	{"xml", `<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title type="text">News &amp; notes</title>
  <![CDATA[ raw <text> ]]>
</feed>
`},
	{"markdown", `# Title

Some *emphasis*, a [link](https://example.org) and ` + "`code`" + `.

- item
- item
`},
	{"go-html-template", `{{ define "main" }}
<ul>{{ range .Pages }}<li><a href="{{ .RelPermalink }}">{{ .Title | upper }}</a></li>{{ end }}</ul>
{{ end }}
`},
}
