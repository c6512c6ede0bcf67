// The spool's model-based test, the long run (test/helpers/spool-model-run.ts):
// longer sequences and more of them than the unit tier's short run.
import t from 'tap';
import { runSpoolModel } from '../helpers/spool-model-run.js';

await runSpoolModel(t, Number(process.env.SPOOL_MODEL_RUNS ?? 1000), 60);
