/** /health for a load balancer: 200 while serving, 503 once the process drains. */
import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import { misframedHead } from '../head.js';
import { answer } from '../reply.js';
import type { HttpState } from '../state.js';

export function health(s: HttpState, method: 'GET' | 'HEAD') {
  if (method === 'HEAD') {
    return (res: HttpResponse, req: HttpRequest): void => {
      if (!misframedHead(s, res, req, 'HEAD')) answer(s, res, 'HEAD', s.draining ? 503 : 200);
    };
  }
  return (res: HttpResponse, req: HttpRequest): void => {
    if (!misframedHead(s, res, req, 'GET')) answer(s, res, 'GET', s.draining ? 503 : 200, s.draining ? 'draining\n' : 'ok\n');
  };
}
