/** Every other method and path: 404, or the refusal of a body uWS may misframe (head.ts). */
import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import { framing } from '../framing.js';
import { countedMethod, unreadBody } from '../head.js';
import { answer, refuseAfterParse } from '../reply.js';
import type { HttpState } from '../state.js';

export function notFound(s: HttpState) {
  return (res: HttpResponse, req: HttpRequest): void => {
    const method = countedMethod(req.getMethod());
    const refused = unreadBody(framing(req));
    if (refused !== null) return refuseAfterParse(s, res, method, refused);
    answer(s, res, method, 404);
  };
}
