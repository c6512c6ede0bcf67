// The spool's model-based test, a short run (test/helpers/spool-model-run.ts;
// the long run is test/system/spool-model.test.ts).
import t from 'tap';
import { runSpoolModel } from '../helpers/spool-model-run.js';

await runSpoolModel(t, 4000, 40);
