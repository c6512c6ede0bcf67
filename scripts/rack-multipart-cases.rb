#!/usr/bin/env ruby
# frozen_string_literal: true
#
# Writes the generated multipart entries (ids "mpx-…") of
# test/rack/http-post-corpus.json, keeping every other entry: bodies that
# probe Rack 2.2's multipart parser where a strict parser would differ
# (parts without a name or Content-Disposition, Content-ID, charsets, file
# inputs, framing quirks). Then run scripts/rack-http-post-oracle.rb.
#
#   ruby scripts/rack-multipart-cases.rb && ruby scripts/rack-http-post-oracle.rb

require 'json'
require 'base64'

ROOT = File.expand_path('..', __dir__)
CORPUS = File.join(ROOT, 'test/rack/http-post-corpus.json')
B = '----scratchdOracleBoundary'
TYPE = "multipart/form-data; boundary=#{B}"

def part(head, value) = "--#{B}\r\n".b + head.b + "\r\n".b + value.b + "\r\n".b
def named(name, value, extra = "") = part("Content-Disposition: form-data; name=\"".b + name.b + "\"\r\n".b + extra.b, value)
def text(charset, name, value) = named(name, value, "Content-Type: text/plain; charset=#{charset}\r\n")
def close = "--#{B}--\r\n"
def u16(s, enc = 'UTF-16LE') = s.encode(enc).b

cases = {
  'no-name' => part("Content-Disposition: form-data\r\n", 'v') + close,
  'empty-name' => part("Content-Disposition: form-data; name=\"\"\r\n", 'v') + close,
  'no-names' => part("Content-Disposition: form-data\r\n", 'v') + part("Content-Disposition: form-data; name=\"\"\r\n", 'w') +
    named('a', '1') + close,
  'no-name-type' => part("Content-Disposition: form-data\r\nContent-Type: application/json\r\n", '{"x":1}') + close,
  'no-name-charset' => part("Content-Disposition: form-data\r\nContent-Type: text/plain; charset=utf-8\r\n", 'é') + close,
  'content-id' => part("Content-ID: <part1@example>\r\n", 'v') + close,
  'no-disposition' => part("Content-Type: text/plain\r\n", 'v') + named('a', '1') + close,
  'no-disposition-type' => part("Content-Type: application/json\r\n", '1') + part("Content-Type: application/json\r\n", '2') + close,
  'other-header' => part("X-Note: 1\r\n", 'v') + close,
  'no-headers' => part('', 'v') + close,
  'lower-case-headers' => part("content-disposition: form-data; name=a\r\ncontent-type: text/plain; charset=UTF-8\r\n", 'é') + close,
  'utf8-charset' => text('utf-8', 'a', 'é') + close,
  'utf8-charset-quoted' => text('"utf-8"', 'a', 'é') + close,
  'utf8-charset-upper' => text('UTF-8', 'é', 'αβγ 😀') + close,
  'latin1' => text('iso-8859-1', "\xe9".b, "caf\xe9 \x80\xff".b) + close,
  'latin1-upper' => text('ISO-8859-1', 'a', "\xe9".b) + close,
  'latin1-alias' => text('latin1', 'a', "\xe9".b) + close,
  'us-ascii' => text('us-ascii', 'a', 'é') + close,
  'us-ascii-name' => text('us-ascii', 'é', 'x') + close,
  'us-ascii-bad-value' => text('us-ascii', 'a', "\xff".b) + close,
  'utf16le' => text('utf-16le', 'a', u16('hé')) + close,
  'utf16le-even-name' => text('utf-16le', 'a[b]', u16('hé')) + close,
  'utf16be' => text('utf-16be', 'a', u16('hé', 'UTF-16BE')) + close,
  'utf16' => text('utf-16', 'a', u16('hé')) + close,
  'bogus-charset' => text('bogus', 'a', 'x') + close,
  'conflict-then-utf16' => named('a', '1') + named('a[b]', '2') + text('utf-16le', 'c', u16('x')) + close,
  'utf16-then-conflict' => text('utf-16le', 'c', u16('x')) + named('a', '1') + named('a[b]', '2') + close,
  'charset-no-value' => named('a', 'x', "Content-Type: text/plain; charset\r\n") + close,
  'charset-empty-param' => named('a', 'x', "Content-Type: text/plain; \r\n") + close,
  'charset-trailing-semicolon' => named('a', 'é', "Content-Type: text/plain;\r\n") + close,
  'format-flowed' => named('a', 'é', "Content-Type: text/plain; format=flowed\r\n") + close,
  'html-bogus-charset' => named('a', 'x', "Content-Type: text/html; charset=bogus\r\n") + close,
  'type-no-space' => named('a', 'x', "Content-Type:text/plain; charset=bogus\r\n") + close,
  'type-empty' => part("Content-Disposition: form-data\r\nContent-Type: \r\n", 'x') + close,
  'type-empty-named' => named('a', 'x', "Content-Type: \r\n") + close,
  'invalid-utf8-value' => named('a', "\xff".b) + close,
  'invalid-utf8-replaced' => named('a', "\xff".b) + named('a', 'ok') + close,
  'invalid-utf8-name' => named("\xff".b, 'x') + close,
  'bom' => named('a', "\xef\xbb\xbfx".b) + close,
  'empty-filename' => part("Content-Disposition: form-data; name=\"f\"; filename=\"\"\r\nContent-Type: application/octet-stream\r\n", '') +
    named('a', '1') + close,
  'file-no-name' => part("Content-Disposition: form-data; filename=\"f.txt\"\r\n", 'x') + close,
  'filename-star' => part("Content-Disposition: form-data; name=\"f\"; filename*=utf-8''f.txt\r\n", 'x') + close,
  'filename-star-empty' => part("Content-Disposition: form-data; name=\"f\"; filename*=utf-8''\r\n", 'x') + named('a', '1') + close,
  'filename-star-no-charset' => part("Content-Disposition: form-data; name=\"f\"; filename*=''f.txt\r\n", 'x') + close,
  'filename-broken' => part("Content-Disposition: form-data; name=\"f\"; filename=\"a b\"; x=\"\r\n", 'x') + close,
  'file-then-type-conflict' => part("Content-Disposition: form-data; name=\"a\"; filename=\"f\"\r\n", 'x') + named('a[b]', '1') + close,
  'name-escaped-quote' => part("Content-Disposition: form-data; name=\"a\\\"b\"\r\n", 'x') + close,
  'name-token' => part("Content-Disposition: form-data; name=a[b]\r\n", 'x') + close,
  'preamble' => "preamble\r\n".b + named('a', '1') + close,
  'epilogue' => named('a', '1') + close + "epilogue\r\n",
  'missing-crlf' => "--#{B}\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx".b + named('b', 'y') + close,
  'lf-only' => "--#{B}\nContent-Disposition: form-data; name=\"a\"\n\nx\n--#{B}--\n",
  'only-end' => close,
  'empty-body' => '',
  'no-close' => named('a', '1'),
  'files-127' => part("Content-Disposition: form-data; name=\"f[]\"; filename=\"\"\r\n", '') * 127 + close,
  'files-128' => part("Content-Disposition: form-data; name=\"f[]\"; filename=\"\"\r\n", '') * 128 + close,
}
types = {
  'no-boundary' => ['multipart/form-data', 'a=1&b=%C3%A9'],
  'no-boundary-empty' => ['multipart/form-data', ''],
  'boundary-space' => ["multipart/form-data; boundary =#{B}", named('a', '1') + close],
  'two-boundaries' => ["multipart/form-data; boundary=#{B}; boundary=x", named('a', '1') + close],
  'quoted-boundary' => ["multipart/form-data; boundary=\"#{B}\"", named('a', '1') + close],
  'boundary-upper-type' => ["Multipart/Form-Data; BOUNDARY=#{B}", named('a', '1') + close],
}

entry = lambda do |id, type, body, q = ''|
  e = { 'id' => "mpx-#{id}", 'q' => q, 'type' => type }
  b = body.b
  if b.dup.force_encoding('UTF-8').valid_encoding? then e['body'] = b.dup.force_encoding('UTF-8')
  else e['body64'] = Base64.strict_encode64(b)
  end
  e
end
generated = cases.map { |id, body| entry.(id, TYPE, body) } + types.map { |id, (type, body)| entry.(id, type, body) }
generated << entry.('query-merge-no-name', TYPE, part("Content-Disposition: form-data\r\n", 'v') + close, 'a=1&text/plain[]=q')

data = JSON.parse(File.read(CORPUS))
data['entries'] = data['entries'].reject { |e| e['id'].start_with?('mpx-') } + generated
File.write(CORPUS, JSON.pretty_generate(data, indent: ' ') + "\n")
warn "rack-multipart-cases: #{generated.size} mpx- entries, #{data['entries'].size} in all"
