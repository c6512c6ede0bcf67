/**
 * What stats/ reads of the request path: the counters are defined and bumped
 * in http/ (http/counters.ts, http/reject.ts), and only read here.
 */
export { countResponse, newRequestCounters, type CountedMethod, type RequestCounters } from '../http/counters.js';
export { rejectReasons, type RejectReason } from '../http/reject.js';
