/**
 * `flavors[].privacy` and `flavors[].bots` as config.schema.json describes
 * them, defaults applied. Types only, so flavor.ts can hold them.
 */
export type MaskBytes = 1 | 2 | 3 | 4;

export type SignalAction = 'ignore' | 'anonymize' | 'drop';

export interface PrivacyConfig {
  ip: 'full' | 'masked' | 'hashed' | 'none';
  maskBytes: MaskBytes;
  visitorId?: string;
  gpc: SignalAction;
  dnt: SignalAction;
  identifiers: string[];
  field?: string;
}

export interface BotsConfig {
  action: 'keep' | 'tag' | 'drop';
  field: string;
  emptyUserAgent: 'human' | 'bot';
}

/** Matomo's visitor identifiers, removed by "anonymize" unless the flavor lists its own. */
export const DEFAULT_IDENTIFIERS = ['_id', 'uid', 'cid', 'cip', '_idts', '_idvc', '_viewts', '_ref'];

