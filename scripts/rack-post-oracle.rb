#!/usr/bin/env ruby
# frozen_string_literal: true
#
# The oracle for a POST's Values (src/query/params.ts): Rails' `params`, i.e.
#
#   JSON.generate(Rack::Request.new(env).params)      # GET.merge(POST)
#
# from the real Rack 2.2.22 (Debian bookworm's ruby-rack, on the host), with an
# env built as a server builds it: QUERY_STRING the query's bytes, rack.input
# the body's bytes, CONTENT_TYPE application/x-www-form-urlencoded, or
# multipart/form-data with a body made here from the entry's text fields
# (Rack's own multipart parser then reads it).
#
#   ruby scripts/rack-post-oracle.rb                 # post-corpus.json -> post-expected.json
#   ruby scripts/rack-post-oracle.rb --write-corpus  # regenerate the generated entries first
#
# Entry: {"id", "query"?: raw query, "body"?: form body text | "bodyHex"?: its raw
# bytes | "fields"?: [[name, value], ...] (multipart), "limits"?}. Expected: {"json"} or
# {"reject": REASON}, REASON mapped as in scripts/rack-oracle.rb.

require_relative 'rack-oracle' # parser_for, write_json_lines, Rack, JSON, ROOT
require 'stringio'

POST_CORPUS = File.join(ROOT, 'test/rack/post-corpus.json')
POST_EXPECTED = File.join(ROOT, 'test/rack/post-expected.json')
BOUNDARY = '----scratchdOracleBoundary7MA4YWxkTrZu0gW'

def multipart_body(fields)
  parts = fields.map do |name, value|
    "--#{BOUNDARY}\r\nContent-Disposition: form-data; name=\"#{name}\"\r\n\r\n#{value}\r\n"
  end
  (parts.join + "--#{BOUNDARY}--\r\n").b
end

def body_of(e)
  return [multipart_body(e['fields']), "multipart/form-data; boundary=#{BOUNDARY}"] if e['fields']
  body = e['bodyHex'] ? [e['bodyHex']].pack('H*') : (e['body'] || '').b
  [body, 'application/x-www-form-urlencoded']
end

def post_oracle(e)
  body, type = body_of(e)
  env = {
    'REQUEST_METHOD' => 'POST', 'SCRIPT_NAME' => '', 'PATH_INFO' => '/track',
    'QUERY_STRING' => (e['query'] || '').b, 'SERVER_NAME' => 'localhost', 'SERVER_PORT' => '80',
    'CONTENT_TYPE' => type, 'CONTENT_LENGTH' => body.bytesize.to_s,
    'rack.input' => StringIO.new(body), 'rack.url_scheme' => 'http',
  }
  saved = Rack::Utils.default_query_parser
  Rack::Utils.default_query_parser = parser_for(e['limits']) if e['limits']
  begin
    { 'json' => JSON.generate(Rack::Request.new(env).params) }
  ensure
    Rack::Utils.default_query_parser = saved
  end
rescue Rack::QueryParser::InvalidParameterError => e
  case e.message
  when /\Ainvalid %-encoding/ then { 'reject' => 'bad_encoding' }
  when /\Ainvalid byte sequence/ then { 'reject' => 'invalid_utf8' }
  else raise
  end
rescue Rack::QueryParser::ParameterTypeError
  { 'reject' => 'param_type' }
rescue Rack::QueryParser::QueryLimitError => e
  case e.message
  when 'exceeded available parameter key space' then { 'reject' => 'key_space' }
  when /\Atotal number of query parameters/, /\Atotal query size/ then { 'reject' => 'too_many_params' }
  when e.class.name then { 'reject' => 'depth' }
  else raise
  end
rescue Rack::Multipart::MultipartTotalPartLimitError
  { 'reject' => 'too_many_params' }
rescue JSON::NestingError
  { 'reject' => 'depth' }
rescue JSON::GeneratorError
  { 'reject' => 'invalid_utf8' }
end

def post_entries
  out = []
  add = lambda do |group, list|
    list.each_with_index { |e, i| out << { 'id' => format('%s-%03d', group, i) }.merge(e).merge('gen' => true) }
  end

  add.call('query', [
    '', 'a=1', 'a=1&b=2', 'a=1;b=2', 'a[b]=1&a[c]=2', 'a[]=1&a[]=2', 'a=%', 'a=%FF', 'a=%FF&a=1', '%FF=1',
    'a=1&a[b]=2', 'a' + '[x]' * 100 + '=1', 'a&b=&=c', 'a=1&b=2 ; c=3', 'idsite=1&rec=1&url=https%3A%2F%2Fexample.gr%2F',
  ].map { |q| { 'query' => q } })

  bodies = [
    '', 'a=1', 'a=1&b=2', 'a=1;b=2', 'a=1&;b=2', 'a=1& b=2', 'a=1;  b=2', 'a=1&&b=2&', 'a=1&b=2&  ',
    'a[b]=1&a[c]=2', 'a[]=1&a[]=2', 'a[][b]=1&a[][c]=2&a[][b]=3', 'a=1&a[b]=2', 'a[b]=1&a=2', 'a=%', 'b=1&a=%zz',
    'a=%FF', 'a=%FF&a=1', 'a=1+2&b=%2B', "a=1\u0000", "a=1\u0000\u0000", "a=1\u0000&b=2", "\u0000", 'a=1&b',
    'a' + '[x]' * 99 + '=1', 'a' + '[x]' * 100 + '=1', 'a' + '[][x]' * 50 + '=1', 'a=é&é=α', 'a=%C3%A9', 'a=😀',
    'requests=%5B%22%3Fa%3D1%22%5D', '{"requests":["?idsite=1&rec=1","?idsite=1&rec=2"]}', 'a=b=c', '=1&a=2',
    'a;b=1', 'a=1;b[c]=2', 'a[b;c]=1', ';', 'a=%3B&b=;',
  ]
  add.call('body', bodies.map { |b| { 'body' => b } })

  add.call('merge', [
    ['a=1&b=2', 'b=3&c=4'], ['a=1&b=2&c=3', 'c=x&a=y'], ['a=1', 'a=2&a=3'], ['b=1&a=2', 'c=3&b=4'],
    ['a[x]=1&a[y]=2', 'a[z]=3'], ['a[x]=1', 'a=2'], ['a=1', 'a[x]=2'], ['a[]=1&a[]=2', 'a[]=3'],
    ['a[x][y]=1&b=2', 'a[x][z]=3'], ['a[][x]=1', 'a[][y]=2&b=3'], ['a=1&b[c]=2', 'b[d]=3&a=4&e=5'],
    ['x=1&a=%FF', 'a=ok'], ['a=%FF', 'b=1'], ['a=ok', 'a=%FF'], ['a=%FF', 'a=%FF&a=1'], ['a=%', 'a=1'],
    ['a=1', 'a=%'], ['a=%', 'b=%FF'], ['%FF=1', 'a=1'], ['a=1', '%FF=1'], ['a=1&a[b]=2', 'c=1'],
    ['c=1', 'a=1&a[b]=2'], ['a=1;b=2', 'b;c=3'], ['0=a&1=b', '1=c&0=d&2=e'], ['a', 'a=1'], ['a=1', 'a'],
    ['a=1', ''], ['', 'a=1'], ['', ''], ['a' + '[x]' * 99 + '=1', 'b' + '[x]' * 99 + '=1'],
    ['a' + '[x]' * 99 + '=1', 'a' + '[x]' * 100 + '=1'], ['a' + '[x]' * 100 + '=1', 'b=%'],
    ['idsite=1&rec=1&action_name=Home', 'idsite=2&url=https%3A%2F%2Fexample.gr%2F'],
  ].map { |q, b| { 'query' => q, 'body' => b } })

  # Raw (not %-encoded) bytes in the body: Rack parses the bytes, each raw byte
  # being the byte it is, and refuses only invalid UTF-8 that survives.
  hex = ->(s) { s.unpack1('H*') }
  raw = [
    "a=\xff&a=1", "a=1&a=\xff", "a=\xff", "\xff=1", "a[\xff]=1", "a=1&\xff", "\xff", "a=\xff&b=%", "b=%&a=\xff",
    "a=%&\xff=1", "\xff=1&a=%", "a=\xc3\xa9", "\xc3\xa9=\xce\xb1", "a=\xc3%a9", "a=%c3\xa9", "a=\xc3",
    "a=\xed\xa0\x80", "a=\xf0\x9f\x98\x80", "a=\xc0\xaf", "a[]=\xff&a[]=1", "a[b]=\xff&a[b]=1", "a[b]=\xff&a[c]=1",
    "a=\xff&a[b]=1", "a=1&a[b]=\xff", "a[\xff][c]=1&a=2", "a=\xff\x00", "a=\xff;b=1", "a=\xff&b=\xfe&a=1&b=2",
    "a=+\xff+", "a\xff=1&a\xff=2", "a=\xff&" + 'b' + '[x]' * 100 + '=1', 'b' + '[x]' * 100 + "=1&\xff=1",
    "a=%FF\xff&a=1", "a=\x80", "a=\xe2\x82", "a=\xe2\x82\xac", "\x80[a]=1", "a[b\xff]=1&a=1",
  ]
  add.call('raw', raw.map { |b| { 'bodyHex' => hex.(b.b) } })
  add.call('rawq', raw.first(12).map { |b| { 'query' => 'a=q&z=1', 'bodyHex' => hex.(b.b) } })

  fields = [
    [['a', '1']], [['a', '1'], ['b', '2']], [['a', '1'], ['a', '2']], [['a[b]', '1'], ['a[c]', '2']],
    [['a[]', '1'], ['a[]', '2']], [['a[][b]', '1'], ['a[][c]', '2'], ['a[][b]', '3']], [['a', '1'], ['a[b]', '2']],
    [['a[b]', '1'], ['a', '2']], [['a[]', '1'], ['a[b]', '2']], [['a%5Bb%5D', '1']], [['a+b', 'c+d']], [['a%20b', '%41']],
    [['', '1']], [['a', '']], [['[]', '1']], [['a[', '1']], [['a]', '1']], [['a[b][c]', 'x'], ['a[b][d]', 'y']],
    [['é', 'α']], [['a[😀]', '😀']], [['a', "line1\r\nline2"]], [['a', 'x&y=z']], [['a=b', 'c']], [['a;b', 'c']],
    [['a' + '[x]' * 99, '1']], [['a' + '[x]' * 100, '1']], [['a' + '[][x]' * 50, '1']], [['a' + '[x][]' * 49, '1']],
    [['0', 'a'], ['1', 'b'], ['0', 'c']], [['__proto__', 'x'], ['constructor[a]', 'y']],
    [['a[x]%0A[][b]', '1']], [['a', '"quoted" \\ back']], [['', '1'], ['', '2'], ['a', '3']],
  ]
  add.call('fields', fields.map { |f| { 'fields' => f } })
  add.call('fieldsq', [
    ['a=1&b=2', [['b', '3'], ['c', '4']]], ['a[x]=1', [['a[y]', '2']]], ['a=%', [['a', '1']]], ['a=1', [['a[b]', '2']]],
    ['a=%FF', [['a', 'ok']]], ['x=1', [['a' + '[x]' * 100, '1']]],
  ].map { |q, f| { 'query' => q, 'fields' => f } })
  add.call('fieldsn', [4095, 4096].map { |n| { 'fields' => (1..n).map { |i| ["k#{i}", i.to_s] } } })

  # With the default sanity limits' kind of numbers (each part alone within them).
  lim = { 'maxParams' => 8, 'maxDepth' => 3 }
  add.call('limits', [
    { 'query' => 'a=1&b=2', 'body' => 'c=1&d=2' }, { 'query' => '', 'body' => 'a=1&b=2&c=3&d=4&e=5&f=6&g=7&h=8&i' },
    { 'query' => '', 'body' => 'a=1&b=2&c=3&d=4&e=5&f=6&g=7&h=8' }, { 'query' => '', 'body' => 'a=1;b=2;c=3;d=4;e=5;f=6;g=7;h=8;i=9;j=0' },
    { 'query' => 'a[b][c]=1', 'body' => 'd[e][f]=1' }, { 'query' => 'a=1', 'body' => 'd[e][f][g]=1' },
    { 'query' => 'a[b][c][d]=1', 'body' => 'x=1' }, { 'fields' => [['a[b][c]', '1']] }, { 'fields' => [['a[b][c][d]', '1']] },
  ].map { |e| e.merge('limits' => lim) })

  # Fuzz: random query and body from tokens (fixed seed), raw bytes included.
  tokens = ['a', 'b', '0', '[', ']', '[]', '[a]', '[b]', '=', '=1', '&', ';', ' ', '+', '%', '%5B', '%FF', '%C3%A9',
            "\xff".b, "\xc3\xa9".b, "\xc3".b, 'é', '&a=', '&a[]=', '&a[b]=', '&b=', '%2', "\u0000"]
  rng = Random.new(20_261_130)
  gen = -> { Array.new(rng.rand(10)) { tokens[rng.rand(tokens.size)] }.map(&:b).join }
  fuzz = []
  400.times do
    q = gen.call.force_encoding('UTF-8')
    q = q.scrub('') # a URL query reaches the converter as a string (uWS decodes it)
    fuzz << { 'query' => q, 'bodyHex' => hex.(gen.call) }
  end
  add.call('fuzz', fuzz)
  out
end

if $PROGRAM_NAME == __FILE__
  if ARGV.include?('--write-corpus')
    kept = File.exist?(POST_CORPUS) ? JSON.parse(File.read(POST_CORPUS))['entries'].reject { |e| e['gen'] } : []
    entries = post_entries + kept
    ids = entries.map { |e| e['id'] }
    abort 'rack-post-oracle: duplicate ids' unless ids.uniq.size == ids.size
    write_json_lines(POST_CORPUS, {
      'about' => 'Inputs for the Rack 2.2.22 POST oracle (scripts/rack-post-oracle.rb). Entries with "gen": true ' \
                 'are rewritten by `ruby scripts/rack-post-oracle.rb --write-corpus`; add hand-made ones without it.'
    }, 'entries', entries)
    warn "rack-post-oracle: wrote #{entries.size} corpus entries"
  end
  $VERBOSE = nil
  corpus = JSON.parse(File.read(POST_CORPUS))['entries']
  results = corpus.map { |e| { 'id' => e['id'] }.merge(post_oracle(e)) }
  write_json_lines(POST_EXPECTED, {
    'about' => 'Generated by `ruby scripts/rack-post-oracle.rb` from post-corpus.json; do not edit.',
    'rack' => Rack.release, 'ruby' => RUBY_VERSION, 'json' => JSON::VERSION,
  }, 'expected', results)
  counts = results.group_by { |r| r['reject'] || 'ok' }.transform_values(&:size)
  $stderr.puts "rack-post-oracle: #{results.size} entries: #{counts.sort.to_h}"
end
