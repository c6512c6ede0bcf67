#!/usr/bin/env ruby
# frozen_string_literal: true
#
# The oracle for src/query/: runs every query of test/rack/corpus.json through
# the real Rack 2.2.22 (Debian bookworm's ruby-rack, on the host; trixie has
# Rack 3.1) exactly as the legacy Rails application did,
#
#   JSON.generate(Rack::Utils.parse_nested_query(query_string))
#
# and writes test/rack/expected.json: per entry either {"json": TEXT} or
# {"reject": REASON}, REASON being what scratchd counts the rejection as.
#
#   ruby scripts/rack-oracle.rb                 # corpus.json -> expected.json
#   ruby scripts/rack-oracle.rb --write-corpus  # regenerate the generated part of
#                                               # corpus.json (entries with "gen": true),
#                                               # keeping hand-added entries, then as above
#
# Both outputs are deterministic (fixed seeds, stable order, one entry per line).
#
# Corpus entry: {"id": "...", "q": "...", "limits": {"maxParams": n, "maxDepth": n}?,
# "extra": [k, v, ...]?, "gen": true?}. "limits" builds a QueryParser with those
# limits (params_limit, param_depth_limit); "extra" pairs are assigned to the
# resulting hash after parsing (h[k] = v), as scratchd's enrichment does.

require 'rack'
require 'rack/utils' # autoload: loads Rack::QueryParser too
require 'json'
require 'digest'

abort "rack-oracle: need Rack 2.2.22, have #{Rack.release}" unless Rack.release == '2.2.22'

ROOT = File.expand_path('..', __dir__)
CORPUS = File.join(ROOT, 'test/rack/corpus.json')
EXPECTED = File.join(ROOT, 'test/rack/expected.json')

QP = Rack::QueryParser

def parser_for(limits)
  return nil unless limits
  QP.make_default(Rack::Utils.key_space_limit,
                  limits.fetch('maxDepth', Rack::Utils.param_depth_limit),
                  params_limit: limits.fetch('maxParams', 4096))
end

# The query as a server hands it to Rack: QUERY_STRING is a binary (ASCII-8BIT)
# string of the raw bytes.
def oracle(q, limits, extra, binary: true)
  parser = parser_for(limits)
  qs = binary ? q.b : q
  h = parser ? parser.parse_nested_query(qs) : Rack::Utils.parse_nested_query(qs)
  extra&.each_slice(2) { |k, v| h[k] = v }
  { 'json' => JSON.generate(h) }
rescue QP::InvalidParameterError => e
  case e.message
  when /\Ainvalid %-encoding/ then { 'reject' => 'bad_encoding' }
  when /\Ainvalid byte sequence/ then { 'reject' => 'invalid_utf8' } # name =~ regex on a broken key
  else raise
  end
rescue QP::ParameterTypeError
  { 'reject' => 'param_type' }
rescue QP::QueryLimitError => e # == ParamsTooDeepError
  case e.message
  when 'exceeded available parameter key space' then { 'reject' => 'key_space' }
  when /\Atotal number of query parameters/ then { 'reject' => 'too_many_params' }
  when /\Atotal query size/ then { 'reject' => 'too_many_params' }
  when e.class.name then { 'reject' => 'depth' } # raise ParamsTooDeepError (no message)
  else raise
  end
rescue JSON::NestingError # JSON.generate's max_nesting (100), < ParserError
  { 'reject' => 'depth' }
rescue JSON::GeneratorError # invalid UTF-8 in what survived
  { 'reject' => 'invalid_utf8' }
end

# ---------------------------------------------------------------------------
# Corpus generation (--write-corpus)

def gen_entries
  out = []
  add = lambda do |group, list, **opts|
    list.each_with_index do |q, i|
      out << { 'id' => format('%s-%03d', group, i), 'q' => q }.merge(opts.transform_keys(&:to_s))
    end
  end

  add.call('flat', [
    '', 'a', 'a=', 'a=1', 'a=1&b=2', 'a=1;b=2', 'a=1&b=2;c=3', 'a=1&a=2', 'a=1&b=2&a=3', 'a&b&c',
    'a&a=1', 'a=1&a', 'a=&a', 'a&a=', '=', '==', '=1', '=1=2', 'a==1', 'a=1=2', 'a=b=c&d==',
    '&', '&&', ';', ';;', '&;&;', '&a=1', ';a=1', 'a=1&', 'a=1;', '&&a=1&&', 'a=1&&b=2', 'a=1;;b=2',
    'a=1&;b=2', ' ', '  ', ' a=1', 'a=1 ', ' a = 1 ', 'a=1& b=2', 'a=1&  b=2', 'a=1;   b', 'a=1 & b=2',
    'a=1&b=2 ', 'a=1& ', 'a=1&  ', 'a=1& & ', 'a=1 &', '& a=1', ' & a=1', "a=1&\tb=2", "a=1\t&b=2",
    'a=1&+b=2', 'a=1&%20b=2', 'a+b=c+d', 'a%20b=c%20d', 'a=%2B', 'a=+%2B+', 'a=1+&+b=2', '+=+', '+',
    '++=++', 'a=%26b%3Dc', 'a=%3B', 'a%3Db=c', 'a%26b=c', 'a=b%3Bc=d', 'a=%25', 'a=%2525', 'a=%c3%a9',
    '%C3%A9=%c3%A9', '%61=%62', 'A=1&a=2', 'a=1&A=2',
    '1=a&0=b&-1=c&01=d&2=e&4294967295=f&4294967294=g', 'b=1&1=2', '10=x&9=y&a=z&8=w',
    '__proto__=x&constructor=y&toString=z', 'hasOwnProperty=1&valueOf=2', '__proto__&prototype=1',
    'a=true&b=false&c=null&d=1.5&e=-0&f=1e3&g=0x10', 'id=007&n=00', 'a=[]&b={}&c=[1,2]',
    'x=' + 'abc' * 10, 'foo=bar', 'a=1&b=2&c=3&d=4&e=5&f=6&g=7&h=8&i=9&j=10&k=11&l=12&m=13&n=14&a=15&m=16&b=17',
    (1..40).map { |i| "k#{i % 17}=v#{i}" }.join('&'),
    (1..40).map { |i| "k#{i}=#{i}" }.join(';'),
  ])

  add.call('pct', [
    '%', 'a=%', 'a=%4', 'a=%zz', 'a=%4g', 'a=%g4', '%=1', 'a%=1', 'a=1%', 'a=%%', 'a=%%41', 'a=%41%',
    'a=%u0041', '=%', '%&a=1', 'a=%&b=%FF', 'a=1&b=%', 'a=%0', 'a=%0G', 'a=%+1', 'a=% 1', 'a=%-1',
    '%FF=%', 'a=1&a[b]=%', 'a[b]=%&a=1', '%5=1', 'a=%2', 'a=%2&', 'a=%2;b', 'a=1&%', 'a=1;%zz=2',
    '%41%42%43=%61%62%63', 'a=%7e%7E%7f', 'a=%00', 'a=%00%01', 'a%00b=1', 'a=%EF%BB%BF',
    'a=%é', 'a=%%C3%A9', 'a=%C3%A', 'a=%C3%A9%',
  ])

  add.call('nest', [
    'a[b]=1', 'a[b][c]=1', 'a[b]=1&a[c]=2', 'a[b]=1&a[b]=2', 'a[b]=1&c=2&a[d]=3', 'a[]=1', 'a[]=1&a[]=2',
    'a[]=1&a[]', 'a[]', 'a[]=', 'a[]=&a[]=', 'a[][b]=1', 'a[][b]=1&a[][c]=2', 'a[][b]=1&a[][b]=2',
    'a[][b][c]=1&a[][b][d]=2', 'a[][b][c]=1&a[][b][c]=2', 'a[][b]=1&a[][c][d]=2&a[][c][e]=3',
    'a[][b]=1&a[][c]=2&a[][b]=3&a[][c]=4', 'a[][b][]=1&a[][b][]=2', 'a[][b][c]=1&a[][b]=2',
    'a[][b]=1&a[][b][c]=2', 'a[][b][c][d]=1&a[][b][c][e]=2', 'a[][]=1', 'a[][]=1&a[][]=2', 'a[][][]=1',
    'a[][]', 'a[]]=1', 'a[]]', 'a[[]=1', 'a[b]=1&a[[]=2', 'a[[]=1&a[b]=2', 'a[[b]=1', 'a[b]]=1', 'a]=1',
    'a]]=1', ']a=1', ']]a]]=1', '[a]=1', '[[a]]=1', '[a][b]=1', '[]=1', '[]', '[]=', '[][]=1', '[=1',
    ']=1', '][=1', '[]]=1', '[[]]=1', 'a[=1', 'a[=1&a[=2', 'a[b=1', 'a][=1', 'a][b=1', 'a[b][=1',
    'a[b][=1&a[b][c]=2', 'a[ ]=1', 'a[b c]=1', 'a[]x=1', 'a[]x[y]=1', 'a[]x]=1', 'a[]=1&a[]x=2',
    'a[0]=x&a[1]=y', 'a[1]=x&a[0]=y', 'a[b][]=1&a[b][]=2', 'a[b][][c]=1', 'a[]b=1', 'a[][=1', 'a[][[=1',
    'a[][[b]]=1', 'a[[]]=1', 'a[][]]=1', 'a[]][]=1', 'a[]][b]=1', 'a[b]c=1', 'a[b]c[d]=1', 'a[b][c]d=1',
    'a=1&a[b]=2', 'a[]=1&a[b]=2', 'a[b]=1&a[]=2', 'a[b]=1&a[b][c]=2', 'a[b][c]=1&a[b]=2', 'a[]=1&a=2',
    'a[b]=1&a=2', 'a[]=1&a[][b]=2', 'a[][b]=1&a[]=2', 'a=1&a[]=2', 'a=1&a[][b]=2', 'a[][b]=1&a[b]=2',
    'a&a[b]=1', 'a&a[]=1', 'a&a[][b]=1', 'a[b]&a[b][c]=1', 'a[b]&a[b][]=1', 'a[][b]&a[][b]=1',
    'a[][b]=1&a[][b]', 'a=&a[b]=1', 'a[b]=1&a', 'a[b]=1&a&a[c]=2', 'a[[]=1&a[b]=2&a[c]=3',
    'a%5Bb%5D=1', 'a%5bb%5d=1', '%5Ba%5D=1', 'a%5B%5D=1&a%5B%5D=2', 'a[b%5D=1', 'a%5B]=1',
    'a=%5B%5D', 'a[b]=%5B', 'a[%5B]=1', 'a[b%5Bc]=1', 'a[%5D%5D]=1',
    'a[x]%0A[][b]=1', 'a[]%0Afoo=1', 'a[]%0A[]b=1', 'a[b]%0A[][c]=1&a[b]%0A[][d]=2', 'a[%0A]=1',
    'a%0A[b]=1', 'a[]%0A=1', 'a[][b%0Ac]=1', 'a[][b]%0A=1', 'a[][b]%0Ax=1', 'a[%0A[]=1', 'a[x]%0A[]=1',
    'a[x]%0A[]y=1', 'a[x]%0A[]y%0A=1', 'a[%0A][%0A]=1', 'a[%0D]=1', "a[x]\n[][b]=1", 'a[]%0A%0A=1',
    'a[x]%0A[][b]%0A=1', 'a[][b]%0A[][c]=1', 'a[][x]%0A[]=1', 'a[]%0A[][b]=1',
    'user[name]=x&user[roles][]=a&user[roles][]=b&user[address][city]=Athens&user[address][zip]=10558',
    'items[][id]=1&items[][qty]=2&items[][id]=3&items[][qty]=4',
    'f[a][b][c][d][e]=1&f[a][b][c][d][g]=2', 'a[1]=x&a[0]=y&a[b]=z', 'a[__proto__]=1&a[constructor][x]=2',
    '__proto__[a]=1', 'a[]=1&b[]=2&a[]=3', 'a[b][]=1&a[c][]=2&a[b][]=3',
  ])

  deep = []
  [0, 1, 2, 50, 97, 98, 99, 100, 101, 120].each { |n| deep << 'a' + '[x]' * n + '=1' }
  [1, 2, 50, 98, 99, 100, 101].each { |n| deep << 'a' + '[]' * n + '=1' }
  [1, 2, 10, 30, 48, 49, 50, 51, 60, 99, 100].each { |n| deep << 'a' + '[][x]' * n + '=1' }
  [32, 33, 49, 50, 66, 67, 98, 99, 100].each { |n| deep << 'a' + '[x][]' * n + '=1' }
  [48, 49, 50, 51].each { |n| deep << 'a' + '[]' + '[x][]' * n + '[y]=1' }
  [98, 99, 100].each { |n| deep << ('a' + '[x]' * n + '=1&') * 2 + 'b=2' }
  deep << 'a' + '[x]' * 100 + '=%FF' << 'a' + '[x]' * 99 + '=%FF' << 'b=%&' + 'a' + '[x]' * 100 + '=1'
  deep << 'a' + '[x]' * 100 + '=1&b=%' << 'a' + '[][x]' * 50 + '=%FF' << 'b=%FF&' + 'a' + '[][x]' * 50 + '=1'
  deep << 'a' + '[x]' * 100 << '[' * 200 + 'a' + ']' * 200 + '=1' << 'a' + '[' * 150 + ']' * 150 + '=1'
  deep << 'a' + '[x]' * 99 + '[' + '=1' << 'a' + '[]' * 100 + '[x]=1' << 'a' + '%5Bx%5D' * 100 + '=1'
  add.call('deep', deep)

  # Mixed nesting (issue 12): alternations of `[]` and `[x]`, starting with either,
  # at every length to past JSON's nesting limit with Rack's limits, and with every
  # depth limit 1..100 around the length where Rack's recursion reaches it. Rack
  # counts normalize_params calls: `[]` followed by `[x]` is one step.
  alternate = ->(m, first) { (0...m).map { |i| (i + first).even? ? '[]' : '[x]' }.join }
  mixed = []
  (1..205).each { |m| [0, 1].each { |o| mixed << 'a' + alternate.(m, o) + '=1' } }
  add.call('mixed', mixed)
  (1..100).each do |d|
    list = []
    ([1, 2 * d - 4].max..(2 * d + 1)).each { |m| [0, 1].each { |o| list << 'a' + alternate.(m, o) + '=1' } }
    add.call(format('mixedd%03d', d), list, limits: { 'maxParams' => 4096, 'maxDepth' => d })
  end

  # Runs (issue 34): units of 1-2 `[]` and 1-2 `[b]`, in both orders, repeated,
  # then ending as they are or with one more `[]` or `[b]`: Rack's depth counter
  # (one normalize_params call per `[key]`, a `[]` followed by `[key]` one step,
  # `[]`-runs swallowed) at the default maxDepth 32 and at Rack's 100, where
  # JSON's nesting limit meets it. The issue's example is runs100's
  # `a[]` + `[b][]` * n.
  units = [1, 2].product([1, 2]).flat_map { |r, s| ['[]' * r + '[b]' * s, '[b]' * s + '[]' * r] }
  runs = units.product(['', '[]', '[b]']).flat_map do |unit, tail|
    (1..40).flat_map { |n| ['a' + unit * n + tail + '=v', 'a[]' + unit * n + tail + '=v'] }
  end
  runs += (1..70).flat_map { |n| ['a[]' + '[b][]' * n + '=v', 'a' + '[b][]' * n + '=v', 'a[b]' + '[][b]' * n + '=v'] }
  add.call('runs032', runs, limits: { 'maxParams' => 4096, 'maxDepth' => 32 })
  add.call('runs100', runs, limits: { 'maxParams' => 4096, 'maxDepth' => 100 })
  short = units.product(['', '[]', '[b]']).flat_map do |unit, tail|
    (1..6).flat_map { |n| ['a' + unit * n + tail + '=v', 'a[]' + unit * n + tail + '=v'] }
  end
  [2, 3, 4, 5, 8].each { |d| add.call(format('runsd%d', d), short, limits: { 'maxParams' => 4096, 'maxDepth' => d }) }

  sep = []
  sep << (['a=1'] * 4096).join('&') << (['a=1'] * 4097).join('&') << (['a=1'] * 4096).join(';')
  sep << (['a=1'] * 4097).join(';') << '&' * 4095 << '&' * 4096 << ';' * 4096 << 'a' + '&;' * 2048
  sep << 'a' + '&;' * 2047 + '&' << (1..4096).map { |i| "k#{i}=#{i}" }.join('&')
  sep << (1..4095).map { |i| "k#{i}" }.join('&') + '&%' << '%&' * 4096 << (['a[]=1'] * 4096).join('&')
  sep << (['a[]=1'] * 4097).join('&') << (1..4096).map { |i| "a[][k#{i % 3}]=#{i}" }.join('&')
  sep << ('a=%26&' * 3000) << (('a=%3B;' * 4096))
  add.call('params', sep)

  big = []
  k4096 = ->(i) { format('k%05d', i) + 'x' * 4090 }
  big << (0...16).map { |i| "#{k4096.(i)}=1" }.join('&')                        # 65536 exactly
  big << (0...16).map { |i| "#{k4096.(i)}=1" }.join('&') + '&z=1'               # 65537
  big << (0...16).map { |i| "#{k4096.(i)}=1" }.join('&') + '&' + k4096.(0) + '=2' # repeat: still 65536
  big << 'a[' + 'y' * 40000 + ']=1&a[' + 'z' * 25535 + ']=2'                     # nested hash: 65535
  big << 'a[' + 'y' * 40000 + ']=1&a[' + 'z' * 25536 + ']=2'                     # 65536
  big << 'a[' + 'y' * 40000 + ']=1&a[' + 'z' * 25537 + ']=2'                     # 65537
  big << 'a[][' + 'y' * 40000 + ']=1&a[][' + 'z' * 25537 + ']=2'                 # two hashes in an array
  big << 'a[]=1&' + 'y' * 65535 + '=1'                                           # a + y*65535 = 65536
  big << 'ab[]=1&' + 'y' * 65535 + '=1'                                          # 65537
  big << 'y' * 65536 + '[=1'                                                     # key "y..[" 65537
  big << 'y' * 65535 + '[=1'                                                     # 65536
  # key space counts characters (code points), not bytes nor UTF-16 units
  k15 = (0...15).map { |i| "#{k4096.(i)}=1" }.join('&')
  big << k15 + '&' + 'é' * 4096 + '=1' << k15 + '&' + 'é' * 4097 + '=1'
  big << k15 + '&' + '%C3%A9' * 4096 + '=1' << k15 + '&' + '%C3%A9' * 4097 + '=1'
  big << k15 + '&' + '😀' * 4096 + '=1' << k15 + '&' + '😀' * 4097 + '=1'
  big << k15 + '&' + '%F0%9F%98%80' * 4096 + '=1' << k15 + '&' + '%F0%9F%98%80' * 4097 + '=1'
  big << 'a[' + 'y' * 60000 + '😀' * 100 + ']=1&a[' + 'z' * 5436 + ']=2' << 'a[' + 'y' * 60000 + '😀' * 100 + ']=1&a[' + 'z' * 5437 + ']=2'
  big << 'k=' + 'v' * 70000
  big << 'k=' + 'v' * 70000 + '&' + 'w' * 65536 + '=1'
  big << 'k=' + '%C3%A9' * 5000 + '&k2=' + '%F0%9F%98%80' * 2000 + '&k3=' + 'é' * 2000 + '😀' * 2000
  big << 'k=' + 'v' * 70000 + '&a[b]=1&a[c][]=2'
  big << 'k=' + 'v' * 70000 + '&m=%FF&m=1&' + 'z' * 100 + '=%'
  big << 'long=' + 'x' * 8192 << 'long=' + '%41' * 8000 << 'long=' + ('%E2%82%AC' * 3000) + '%E2%82'
  add.call('big', big)

  add.call('utf8', [
    'a=%C3%A9', 'a=%CE%B1%CE%B2%CE%B3', 'a=%C4%B1%C4%B0%C5%9F%C4%9F%C3%BC%C3%B6%C3%A7', 'a=%F0%9F%98%80',
    'a=é', 'a=αβγ', 'αβγ=δ', 'a=ğüşıöç İ', 'şehir=İstanbul&ülke=Türkiye', 'πόλη=Αθήνα&χώρα=Ελλάδα',
    'a=😀', '😀=😀', 'a[😀]=1', 'a=👨‍👩‍👧‍👦', 'a=%F0%9F%87%AC%F0%9F%87%B7', 'a=%C3é', 'a=%C3%A9é',
    'a=%E2%82%AC', 'a=€', 'a=%EF%BB%BF', 'a=%EF%BF%BF', 'a=%EF%BF%BD', 'a=%F4%8F%BF%BF', 'a=%F0%90%80%80',
    'a=%FF', 'a=%FE', 'a=%C0%80', 'a=%C0%AF', 'a=%C1%BF', 'a=%E0%80%AF', 'a=%E0%9F%BF', 'a=%E0%A0%80',
    'a=%ED%A0%80', 'a=%ED%BF%BF', 'a=%ED%9F%BF', 'a=%ED%A0%BD%ED%B8%80', 'a=%EE%80%80', 'a=%F0%8F%BF%BF',
    'a=%F4%90%80%80', 'a=%F5%80%80%80', 'a=%F8%88%80%80%80', 'a=%FC%84%80%80%80%80', 'a=%80', 'a=%BF',
    'a=%80%80', 'a=%C3', 'a=%E2%82', 'a=%F0%9F%98', 'a=%C3%28', 'a=%E2%28%A1', 'a=%E2%82%28',
    'a=%F0%28%8C%BC', 'a=%C3%A9%FF', 'a=x%FFy', 'a=%C2%80', 'a=%DF%BF', 'a=%C2',
    'a=%FF&a=1', 'a=1&a=%FF', 'a[]=%FF&a[]=1', 'a[b]=%FF&a[b]=1', 'a[b]=%FF&a[c]=1', 'a=%FF&a[b]=1',
    'a=%FF&b=%', 'b=%&a=%FF', '%FF=1&a=%', 'a=%&%FF=1', '%FF', '%FF=1', '%FF&a=1', 'a=1&%FF', '%C3%A9=1',
    '%C3=1', 'a[%FF]=1', 'a[%C3]', '%FF[a]=1', 'a=1&a[%FF]=1', 'a=1&a[b]=1&%FF', '[]=%FF', '=%FF',
    '[%FF]=1', '%FF]=1', '[=%FF', 'a[][]=%FF', 'a[[]=%FF', 'a[b]=%FF&a[[]=1', 'a[]=%FF&a[]]=1', 'a=%FF%',
    'a[]=1&a[]=%FF&a[b]=1', 'a=%FF&a[]=1', '%ED%A0%80=1', 'a%C0%AF=1', 'a[b]=%FF&a[b][c]=1', 'a=é%FF',
    'ключ=значение', '键=值', 'キー=値', 'a=%D7%A9%D7%9C%D7%95%D7%9D', 'a=‮', 'a=%E2%80%AE', 'a=​',
  ])

  add.call('ctrl', [
    'a=%00', 'a=%01%1F%7F', 'a=%08%09%0A%0C%0D', 'a=%0B%0E%1B', 'a=%22%5C%2F', 'a=%22&%22=%5C',
    "a\"b=c\\d", 'a=</script>', 'a=%3C%2Fscript%3E', 'a=%E2%80%A8%E2%80%A9', "a=\u2028\u2029", '%0A=1',
    "a=\t", "a=\u007f", "a=\u0001", "\u0000=\u0000", "a=1\u0000&b=2", '%00=%00', 'a=%5C%75%30%30%30%30',
    'a=\\u0000', "a='x'&b=\"y\"", 'a=%27%22%60', 'a=%0D%0A', "a=\r\n", "a=1\n&b=2", "a\nb=1", "\n=\n",
  ])

  add.call('tracker', [
    # Matomo / Piwik
    'idsite=1&rec=1&r=123456&h=14&m=3&s=7&url=https%3A%2F%2Fwww.example.gr%2Fnews%2F2024%2F05%2Farticle-title%3Futm_source%3Dnewsletter&urlref=https%3A%2F%2Fwww.google.com%2F&_id=4f3c2b1a0d9e8f7a&_idn=0&send_image=1&res=1920x1080&action_name=%CE%95%CE%B9%CE%B4%CE%AE%CF%83%CE%B5%CE%B9%C2%A0-%C2%A0Example&pv_id=Ab3dE6',
    'action_name=Home&idsite=3&rec=1&r=558844&h=9&m=5&s=33&url=https%3A%2F%2Fexample.com.tr%2F&_id=0123456789abcdef&_idts=1700000000&_idvc=4&_idn=0&_refts=0&_viewts=1700000000&send_image=0&pdf=1&qt=0&realp=0&wma=0&fla=0&java=0&ag=0&cookie=1&res=390x844&gt_ms=120&pv_id=q1W2e3',
    'idsite=1&rec=1&e_c=Video&e_a=Play&e_n=Intro%20Movie&e_v=12.5&url=https%3A%2F%2Fwww.example.gr%2Fvideo',
    'idsite=1&rec=1&search=%CE%B1%CE%B8%CE%AE%CE%BD%CE%B1&search_cat=&search_count=17',
    'idsite=1&rec=1&cvar=%7B%221%22%3A%5B%22OS%22%2C%22iphone%22%5D%2C%222%22%3A%5B%22Lang%22%2C%22el%22%5D%7D&_cvar=%7B%7D',
    'idsite=1&rec=1&idgoal=0&revenue=12.99&ec_id=A10000123&ec_items=%5B%5B%22SKU1%22%2C%22Product%22%2C%22Cat%22%2C10%2C1%5D%5D&ec_st=10&ec_tx=2&ec_sh=0.99',
    'idsite=1&rec=1&url=https%3A%2F%2Fwww.example.co.uk%2Fsearch%3Fq%3Da%2Bb%26page%3D2&action_name=Search%20results%20for%20%22a%2Bb%22&uadata=%7B%22fullVersionList%22%3A%5B%5D%7D&dimension1=logged-in&dimension2=',
    'idsite=1&rec=1&ping=1&_id=4f3c2b1a0d9e8f7a&pv_id=Ab3dE6&bots=1&cip=10.0.0.1&cdt=2024-05-01%2012%3A00%3A00&token_auth=',
    # Universal Analytics measurement protocol
    'v=1&_v=j101&a=1234567890&t=pageview&_s=1&dl=https%3A%2F%2Fwww.example.gr%2F&ul=el-gr&de=UTF-8&dt=%CE%91%CF%81%CF%87%CE%B9%CE%BA%CE%AE&sd=24-bit&sr=1920x1080&vp=1903x969&je=0&_u=QACAAEABAAAAACAAI~&jid=&gjid=&cid=1234567890.1700000000&tid=UA-12345-1&_gid=987654321.1700000000&z=1234567',
    'v=1&t=event&tid=UA-12345-1&cid=555&ec=video&ea=play&el=holiday&ev=300',
    'v=1&t=transaction&tid=UA-12345-1&cid=555&ti=12345&ta=westernWear&tr=50.00&ts=32.00&tt=12.00&cu=EUR',
    'v=1;t=pageview;tid=UA-12345-1;cid=555;dp=%2Fhome',
    # GA4 (g/collect)
    'v=2&tid=G-ABCDEF1234&gtm=45je4510v9119&_p=1700000000000&gcd=13l3l3l3l1&npa=0&dma=0&cid=1234567890.1700000000&ul=tr-tr&sr=1920x1080&uaa=x86&uab=64&uafvl=Chromium%3B124.0.6367.91%7CGoogle%2520Chrome%3B124.0.6367.91&uamb=0&uam=&uap=Windows&uapv=15.0.0&uaw=0&are=1&pae=1&frm=0&pscdl=noapi&_s=1&sid=1700000000&sct=1&seg=0&dl=https%3A%2F%2Fwww.example.com.tr%2F&dt=Ana%20Sayfa&en=page_view&_fv=1&_nsi=1&_ss=1&tfd=512',
    'v=2&tid=G-ABCDEF1234&cid=1.2&en=purchase&ep.transaction_id=T_12345&epn.value=25.42&ep.currency=EUR&pr1=idSKU_12345~nmStan%20and%20Friends%20Tee~afGoogle%20Store~cpSUMMER_FUN~ds2.22~lp5~brGoogle~caApparel~va green~qt3&epn.tax=4.90',
    'v=2&tid=G-ABCDEF1234&cid=1.2&en=scroll&epn.percent_scrolled=90&_et=15012&ep.page_type=article%20%2F%20news',
    # Snowplow
    'e=pv&url=https%3A%2F%2Fwww.example.co.uk%2Fproducts%2F123&page=Product%20123&refr=https%3A%2F%2Fwww.bing.com%2F&tv=js-3.17.0&tna=sp1&aid=shop&p=web&cs=UTF-8&lang=en-GB&res=2560x1440&cd=24&tz=Europe%2FLondon&dtm=1700000000000&vp=1280x720&ds=1280x3000&vid=3&sid=8a3e2a5e-6d4f-4d2e-9c1e-1f2e3d4c5b6a&duid=4a3e2a5e-6d4f-4d2e-9c1e-1f2e3d4c5b6a&cx=eyJzY2hlbWEiOiJpZ2x1OmNvbS5zbm93cGxvd2FuYWx5dGljcy5zbm93cGxvdy9jb250ZXh0cy9qc29uc2NoZW1hLzEtMC0wIiwiZGF0YSI6W119&stm=1700000000001',
    'e=se&se_ca=Mixes&se_ac=Play&se_la=MRC%2Ffabric-0503-mix&se_pr=mp3&se_va=0.0&tv=js-3.17.0&p=web&eid=f2b1c0de-0000-4000-8000-000000000001',
    'e=ue&ue_px=eyJzY2hlbWEiOiJpZ2x1OmNvbS5zbm93cGxvd2FuYWx5dGljcy5zbm93cGxvdy91bnN0cnVjdF9ldmVudC9qc29uc2NoZW1hLzEtMC0wIn0%3D&tv=js-3.17.0&p=web',
    # Meta pixel (nested keys) and others
    'id=1234567890&ev=PageView&dl=https%3A%2F%2Fwww.example.gr%2F&rl=&if=false&ts=1700000000000&cd[content_ids]=%5B%22123%22%5D&cd[content_type]=product&cd[value]=9.99&cd[currency]=EUR&sw=1920&sh=1080&v=2.9.140&r=stable&ec=0&o=4126&fbp=fb.1.1700000000000.123456789&it=1700000000000&coo=false&rqm=GET',
    'utm_source=newsletter&utm_medium=email&utm_campaign=spring%20sale%202024&utm_term=%CE%B5%CE%BA%CF%80%CF%84%CF%8E%CF%83%CE%B5%CE%B9%CF%82&utm_content=hero+banner',
    'foo=bar', 'foo=bar&ts=1700000000&ref=https://www.example.gr/a?b=c', 'u=https://example.gr/x?y=1&z=2#frag',
    'ev=click&el[id]=buy&el[classes][]=btn&el[classes][]=primary&pos[x]=10&pos[y]=20',
    'event=add_to_cart&items[0][id]=1&items[0][qty]=2&items[1][id]=3', 'q=%E0%B8%AA%E0%B8%A7%E0%B8%B1%E0%B8%AA%E0%B8%94%E0%B8%B5',
  ])

  add.call('limits', [
    'a=1', 'a=1&b=2', 'a=1&b=2&c=3', '&', 'a&', '%&a', 'a=1;b=2;c=3;d=4;e=5;f=6;g=7;h=8;i=9;j=10',
  ], limits: { 'maxParams' => 2, 'maxDepth' => 100 })
  add.call('limits1', ['a', 'a&', 'a=1&b=2', ''], limits: { 'maxParams' => 1, 'maxDepth' => 100 })
  add.call('depth1', ['a=1', 'a[b]=1', 'a[]=1', 'a[][b]=1', '[]=1', 'a[=1', 'a[[]=1', '&a=1', 'a=%', '%FF=1', 'a=%FF'],
           limits: { 'maxParams' => 4096, 'maxDepth' => 1 })
  add.call('depth2', ['a[b]=1', 'a[b][c]=1', 'a[][b]=1', 'a[][b][c]=1', 'a[][]=1', 'a[]=1', 'a[b][]=1', 'a[[]=1'],
           limits: { 'maxParams' => 4096, 'maxDepth' => 2 })
  add.call('depth32', [31, 32, 33].map { |n| 'a' + '[x]' * n + '=1' } + [15, 16, 31, 32].map { |n| 'a' + '[][x]' * n + '=1' },
           limits: { 'maxParams' => 1000, 'maxDepth' => 32 })
  add.call('depth0', ['', '&', '& ;', 'a', '&a', ' ', '=', '%=1', '%FF=1', 'a=%FF'],
           limits: { 'maxParams' => 4096, 'maxDepth' => 0 })

  add.call('extra', ['', 'a=1&b=2', 'ip=1.2.3.4', 'a[b]=1', 'a=%FF', 'a=%FF&b=1', 'a=1&a[b]=2', 'a[]=%FF', 'x=%'],
           extra: ['ip', '203.0.113.7', 'ua', "Mozilla/5.0 \"quoted\" \\ \u00e9 \u2028", 'a', 'server'])
  add.call('extra2', ['b=1&a=2', '', 'ts=old'], extra: ['ts', '2024-05-01T12:00:00+03:00', 'ts', 'later', '0', 'zero', '1', 'one'])

  # Fuzz: random sequences of interesting tokens (fixed seed: MT19937 is stable).
  tokens = ['a', 'b', 'c', '0', '1', '[', ']', '[]', '[a]', '[b]', '[0]', '=', '==', '&', ';', ' ', '  ', '+', '%',
            '%5B', '%5D', '%5b', '%3D', '%26', '%FF', '%C3%A9', 'é', '😀', '%0A', "\n", '%2', '%zz', 'x', '%E2%82',
            '&a=', '[][', '][', '[]=', '=1', '&a[]=', '&a[b]=', '&a[][b]=', '&b[', '%20', '%2B']
  rng = Random.new(20_260_125)
  seen = {}
  fuzz = []
  while fuzz.size < 1200
    q = Array.new(1 + rng.rand(14)) { tokens[rng.rand(tokens.size)] }.join
    next if seen[q]
    seen[q] = true
    fuzz << q
  end
  add.call('fuzz', fuzz)
  # Nested-key fuzz: brackets, newlines (Ruby's ^/$ are line anchors) and repeats,
  # no invalid %-encoding, so that most entries reach normalize_params.
  ntokens = ['a', 'b', 'x', '0', '[', ']', '[]', '[a]', '[b]', '[x]', '[][a]', '[][b]', '][', '[[', ']]', '%0A', "\n",
             '=', '=1', '=2', '&', '&a', '&a[', '&a[]', '&a[][', '&b', ';', ' ', '%5B', '%5D', '%FF', 'é']
  nfuzz = []
  while nfuzz.size < 1500
    q = Array.new(2 + rng.rand(16)) { ntokens[rng.rand(ntokens.size)] }.join
    next if seen[q]
    seen[q] = true
    nfuzz << q
  end
  add.call('nfuzz', nfuzz)
  # Fuzz with a small depth limit, to exercise the depth counter on odd keys.
  add.call('fuzzd', fuzz.first(300) + nfuzz.first(300), limits: { 'maxParams' => 8, 'maxDepth' => 3 })

  out.each { |e| e['gen'] = true }
end

def write_json_lines(path, head, key, list)
  File.open(path, 'w') do |f|
    f.write("{\n")
    head.each { |k, v| f.write("  #{JSON.generate(k)}: #{JSON.generate(v)},\n") }
    f.write("  #{JSON.generate(key)}: [\n")
    list.each_with_index do |e, i|
      f.write('    ', JSON.generate(e), i + 1 < list.size ? ",\n" : "\n")
    end
    f.write("  ]\n}\n")
  end
end

# Run as a script (scripts/rack-property-oracle.rb requires this file for `oracle`).
if $PROGRAM_NAME == __FILE__
  if ARGV.include?('--write-corpus')
    kept = File.exist?(CORPUS) ? JSON.parse(File.read(CORPUS))['entries'].reject { |e| e['gen'] } : []
    entries = gen_entries + kept
    ids = entries.map { |e| e['id'] }
    abort 'rack-oracle: duplicate ids' unless ids.uniq.size == ids.size
    write_json_lines(CORPUS, {
      'about' => 'Inputs for the Rack 2.2.22 oracle (scripts/rack-oracle.rb). Entries with "gen": true ' \
                 'are rewritten by `ruby scripts/rack-oracle.rb --write-corpus`; add hand-made ones without it.'
    }, 'entries', entries)
    warn "rack-oracle: wrote #{entries.size} corpus entries"
  end

  def silent
    v = $VERBOSE
    $VERBOSE = nil # Rack's /n regex warns on UTF-8 strings with non-ASCII
    yield
  ensure
    $VERBOSE = v
  end

  # Long outputs are stored as their SHA-256 (and byte length), to keep the file small.
  def compact(r)
    j = r['json']
    return r if j.nil? || j.bytesize <= 2048
    { 'sha256' => Digest::SHA256.hexdigest(j), 'length' => j.bytesize }
  end

  corpus = JSON.parse(File.read(CORPUS))['entries']
  results = corpus.map do |e|
    r = oracle(e.fetch('q'), e['limits'], e['extra'])
    # The same query as a UTF-8 string must give the same answer (servers pass binary).
    q8 = e['q'].dup.force_encoding('UTF-8')
    if q8.valid_encoding? && (silent { oracle(q8, e['limits'], e['extra'], binary: false) }) != r
      warn "rack-oracle: #{e['id']}: binary and UTF-8 query strings differ"
    end
    { 'id' => e['id'], 'bytes' => e['q'].bytesize }.merge(compact(r))
  end
  write_json_lines(EXPECTED, {
    'about' => 'Generated by `ruby scripts/rack-oracle.rb` from corpus.json; do not edit.',
    'rack' => Rack.release, 'ruby' => RUBY_VERSION, 'json' => JSON::VERSION,
  }, 'expected', results)
  counts = results.group_by { |r| r['reject'] || 'ok' }.transform_values(&:size)
  warn "rack-oracle: #{results.size} entries: #{counts.sort.to_h}"
end
