// The spool's model-based test, the long run (test/helpers/spool-model-run.ts):
// longer sequences, for 45 s, where the unit tier's short run has seconds.
import t from 'tap';
import { runSpoolModel } from '../helpers/spool-model-run.js';

await runSpoolModel(t, 45_000, 80);
