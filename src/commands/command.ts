/**
 * What every `scratchd NAME` subcommand shares: `--help` prints its usage and
 * exits 0; a bad argument, config or file ends it with one line on stderr and
 * exit 1, never a stack trace.
 */
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, type Config } from '../config.js';
import type { Flavor } from '../flavor.js';
import { CommandError, isSystemError } from '../recovery/command-error.js';

export { CommandError, isSystemError };

/** Run `act` on what `parse` made of the arguments (null: --help). */
export async function runCommand<R>(name: string, usage: string, parse: () => R | null, act: (request: R) => Promise<number>): Promise<number> {
  try {
    const request = parse();
    if (request === null) {
      process.stdout.write(usage);
      return 0;
    }
    return await act(request);
  } catch (err) {
    if (!(err instanceof CommandError || err instanceof ConfigError || isSystemError(err))) throw err;
    process.stderr.write(`scratchd ${name}: ${err.message}\n`);
    return 1;
  }
}

type Options = Record<string, { type: 'string' | 'boolean'; short?: string }>;
type Values<O extends Options> = { [K in keyof O]?: O[K]['type'] extends 'string' ? string : boolean };

/**
 * The arguments with `--config FILE` loaded, or null for `--help`. Every
 * subcommand takes `-c/--config` and `-h/--help` besides `options`.
 */
export function commandArgs<O extends Options>(argv: string[], options: O): { values: Values<O>; config: Config; configFile: string } | null {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({ args: argv, options: { ...options, config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } } }).values;
  } catch (err) {
    throw new CommandError(`${(err as Error).message} (try --help)`);
  }
  if (values.help === true) return null;
  const configFile = values.config;
  if (typeof configFile !== 'string') throw new CommandError('--config FILE is required (try --help)');
  return { values: values as Values<O>, config: loadConfig(configFile), configFile };
}

/** The flavor of that name, or a CommandError listing the ones the config has. */
export function flavorNamed(config: Config, name: string): Flavor {
  const flavor = config.flavors.find((f) => f.name === name);
  if (flavor === undefined) throw new CommandError(`unknown flavor "${name}" (the config has ${config.flavors.map((f) => f.name).join(', ')})`);
  return flavor;
}
