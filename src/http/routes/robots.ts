/** /robots.txt: crawlers that honour it stay off /track; nothing here is content. */
import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import { misframedHead } from '../head.js';
import { answer } from '../reply.js';
import type { HttpState } from '../state.js';

const ROBOTS_TXT = 'User-agent: *\nDisallow: /\n';

export function robots(s: HttpState, method: 'GET' | 'HEAD') {
  return (res: HttpResponse, req: HttpRequest): void => {
    if (!misframedHead(s, res, req, method)) answer(s, res, method, 200, ROBOTS_TXT);
  };
}
