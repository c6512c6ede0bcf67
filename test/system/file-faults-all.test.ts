// The file backend's fault-point harness over every call of every kind (the
// unit tier tries the first and the last of each): test/unit/file-faults.test.ts.
process.env.FILE_FAULTS_ALL = '1';
await import('../unit/file-faults.test.js');
