/**
 * Seeing uWS misframe a chunked body. This uWS reads a chunk extension
 * (`5;a=b`, RFC 9112 §7.1.1) as more digits of the chunk size (`;`, `=` and
 * the letters up to `g` pass its digit check), so it expects a chunk far
 * longer than the one sent and hands over the rest of the stream, framing
 * included, as data, then waits for bytes that never come, until its idle
 * timeout. It hands nothing over that tells the two apart; what it does give:
 * a chunked stream always ends with CRLF (the last chunk's line, then the
 * empty line after the trailers), so a misframed body's data ends with CRLF
 * and then nothing more arrives. A valid body's data may end a read with CRLF
 * too (a multipart body's last line), but its last chunk follows at once.
 *
 * So: data ending with CRLF, then QUIET_MS without another byte or the last
 * chunk, is a misframed body (400 chunk_extension, and close: the stream is
 * out of step). Ending with LF CR counts too: uWS keeps back the last two
 * bytes of what it takes for a chunk (its CRLF), so when the stream ends one
 * byte into them, the data it handed over ends `\r\n\r`. Only a valid body whose client pauses that long right after a
 * CRLF is refused with it. Extensions uWS does frame right (after whitespace:
 * `5 ;a=b`) are ignored, as RFC 9112 asks; those whose bytes its digit check
 * refuses (`;a="b"`, `;name=x`) get uWS's own 400 and close.
 */

/** How long a chunked body whose data ends with CRLF may wait for more. */
export const QUIET_MS = 1000;

const CR = 0x0d;
const LF = 0x0a;

/** The last two bytes of a chunked body's data so far; a piece's memory is not kept. */
export class ChunkTail {
  private prev = -1;
  private last = -1;

  /** Note the piece; true when the data so far ends with CRLF (or LF CR, above). */
  endsWithCrlf(piece: Uint8Array): boolean {
    const n = piece.length;
    if (n >= 2) {
      this.prev = piece[n - 2]!;
      this.last = piece[n - 1]!;
    } else if (n === 1) {
      this.prev = this.last;
      this.last = piece[0]!;
    }
    return (this.prev === CR && this.last === LF) || (this.prev === LF && this.last === CR);
  }
}

/**
 * A size line with an extension inside a finished chunked body's data: uWS
 * misframed a chunk and then found its way back to a size line it could
 * read, handing over the framing in between as data. The next chunk's line
 * then shows (`\r\n3b;x=y`) when the client puts extensions on every chunk,
 * as clients that send them do. Read only for chunked bodies, once, at their
 * end. A body that misframed and found its way back with no extension after
 * it is not seen (docs/faults.md).
 */
export function hasSizeLineInside(body: Buffer): boolean {
  return SIZE_LINE.test(body.toString('latin1'));
}

const SIZE_LINE = /\r\n[0-9A-Fa-f]+[ \t]*;/;
