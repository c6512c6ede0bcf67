// A Go contender for the benchmark: scratchd's original design in a small
// net/http program, stdlib only. Host → flavor, query → one JSON object
// (flat Rack semantics: '&' or ';' separate pairs, '+' is a space, the last
// of repeated keys wins at the place of the first, a key without '=' is
// null), a buffered channel per flavor that the handler never waits on
// (full: the Line is dropped and counted), one writer goroutine per flavor
// appending to <dir>/<flavor>/<flavor>-<YYYY-MM-DD>.log in the flavor's time
// zone. Not part of scratchd; built and run by bench/run.mjs.
//
//	scratchd-go -listen 127.0.0.1:8080 -dir DIR -flavor name=host,zone ...
//
// SIGTERM: stop accepting, let the writers drain and fsync, print
// {"msg":"drained",...} on stdout, exit 0.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	_ "time/tzdata" // zones without the system's tzdata
)

var gif = []byte("GIF89a\x01\x00\x01\x00\x80\x01\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x01\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02L\x01\x00;")

var (
	hdrType    = []string{"image/gif"}
	hdrCache   = []string{"no-store, no-cache, must-revalidate, max-age=0"}
	hdrExpires = []string{"0"}
)

type line struct {
	at   time.Time
	json []byte
}

type flavor struct {
	name      string
	loc       *time.Location
	ch        chan line
	persisted atomic.Int64
	dropped   atomic.Int64
}

type flavorList []string

func (f *flavorList) String() string     { return strings.Join(*f, " ") }
func (f *flavorList) Set(s string) error { *f = append(*f, s); return nil }

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "address")
	dir := flag.String("dir", "log", "log directory")
	capacity := flag.Int("queue", 65536, "channel capacity per flavor")
	var specs flavorList
	flag.Var(&specs, "flavor", "name=host[,host...],zone (repeatable)")
	flag.Parse()

	byHost := map[string]*flavor{}
	var flavors []*flavor
	for _, s := range specs {
		name, rest, _ := strings.Cut(s, "=")
		parts := strings.Split(rest, ",")
		loc, err := time.LoadLocation(parts[len(parts)-1])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		f := &flavor{name: name, loc: loc, ch: make(chan line, *capacity)}
		flavors = append(flavors, f)
		for _, h := range parts[:len(parts)-1] {
			byHost[strings.ToLower(h)] = f
		}
	}

	var writers sync.WaitGroup
	for _, f := range flavors {
		writers.Add(1)
		go func(f *flavor) {
			defer writers.Done()
			write(f, *dir)
		}(f)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("/track", func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.HasSuffix(host, "]") {
			host = host[:i]
		}
		f := byHost[host]
		if f == nil {
			f = byHost[strings.ToLower(host)]
		}
		if f == nil {
			http.Error(w, "Not Found", http.StatusNotFound)
			return
		}
		js, ok := values(r.URL.RawQuery)
		if !ok {
			http.Error(w, "Bad Request", http.StatusBadRequest)
			return
		}
		select {
		case f.ch <- line{time.Now(), js}:
		default:
			f.dropped.Add(1)
		}
		h := w.Header()
		h["Content-Type"] = hdrType
		h["Cache-Control"] = hdrCache
		h["Expires"] = hdrExpires
		w.Write(gif)
	})
	mux.HandleFunc("/", http.NotFound)

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	fmt.Printf("listening %s\n", ln.Addr())

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	srv.Shutdown(ctx)
	cancel()
	for _, f := range flavors {
		close(f.ch)
	}
	writers.Wait()
	var persisted, dropped int64
	for _, f := range flavors {
		persisted += f.persisted.Load()
		dropped += f.dropped.Load()
	}
	file := map[string]int64{"persisted": persisted, "dropped": dropped, "failed": 0}
	out, _ := json.Marshal(map[string]any{"msg": "drained", "backends": map[string]any{"file": file}})
	fmt.Printf("%s\n", out)
}

// write appends the flavor's Lines to its day file: buffered, flushed with
// one write(2) whenever the channel is empty (or the buffer full).
func write(f *flavor, dir string) {
	var (
		file     *os.File
		bw       *bufio.Writer
		day      string
		dayStart time.Time
		dayEnd   time.Time
	)
	closeFile := func() {
		if file != nil {
			bw.Flush()
			file.Sync()
			file.Close()
			file = nil
		}
	}
	for l := range f.ch {
		if file == nil || l.at.Before(dayStart) || !l.at.Before(dayEnd) {
			closeFile()
			t := l.at.In(f.loc)
			y, m, d := t.Date()
			dayStart = time.Date(y, m, d, 0, 0, 0, 0, f.loc)
			dayEnd = dayStart.AddDate(0, 0, 1)
			day = t.Format("2006-01-02")
			path := filepath.Join(dir, f.name, f.name+"-"+day+".log")
			os.MkdirAll(filepath.Dir(path), 0o750)
			var err error
			file, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			bw = bufio.NewWriterSize(file, 64*1024)
		}
		bw.Write(l.json)
		bw.WriteByte('\n')
		f.persisted.Add(1)
		if len(f.ch) == 0 {
			bw.Flush()
		}
	}
	closeFile()
}

// values turns a flat query into its JSON object, keys in order of first
// appearance. false when a pair does not %-decode.
func values(q string) ([]byte, bool) {
	type kv struct {
		k, v string
		null bool
	}
	pairs := make([]kv, 0, 16)
	index := make(map[string]int, 16)
	for q != "" {
		var p string
		i := strings.IndexAny(q, "&;")
		if i < 0 {
			p, q = q, ""
		} else {
			p, q = q[:i], strings.TrimLeft(q[i+1:], " ")
		}
		if p == "" {
			continue
		}
		rawK, rawV, hasV := strings.Cut(p, "=")
		k, err := url.QueryUnescape(rawK)
		if err != nil {
			return nil, false
		}
		v := ""
		if hasV {
			if v, err = url.QueryUnescape(rawV); err != nil {
				return nil, false
			}
		}
		if j, seen := index[k]; seen {
			pairs[j] = kv{k, v, !hasV}
		} else {
			index[k] = len(pairs)
			pairs = append(pairs, kv{k, v, !hasV})
		}
	}
	b := make([]byte, 0, 512)
	b = append(b, '{')
	for i, p := range pairs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, p.k)
		b = append(b, ':')
		if p.null {
			b = append(b, "null"...)
		} else {
			b = appendString(b, p.v)
		}
	}
	return append(b, '}'), true
}

const hex = "0123456789abcdef"

// appendString appends s as a JSON string (as JSON.stringify writes it:
// control characters escaped, invalid UTF-8 as U+FFFD).
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b = append(b, "\ufffd"...)
		} else {
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return append(b, '"')
}
