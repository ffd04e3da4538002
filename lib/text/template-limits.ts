/**
 * Limits on rendering a chat template. A template is code from the checkpoint: one that loops
 * 10^8 times or doubles a string 40 times must end in a typed error within a second or two, not
 * abort V8 after 40 s of allocating. `@huggingface/jinja`'s Interpreter is extended so that the
 * limits are checked while it runs:
 * - every value an expression yields, and every block's output, is measured as it is produced
 *   (strings against a character limit, lists against an item limit);
 * - the output of all blocks together is counted ("work"): a loop is stopped after it has
 *   produced too much, not after it finished;
 * - the few operations that can make a huge value in one step (`join`, `indent`, `replace`,
 *   `tojson`, printing a list or mapping) are estimated before they run;
 * - a deadline is checked every 1024 evaluation steps (loops that print nothing);
 * - `range()` is capped at 100000 items, as in Jinja's sandbox that transformers renders with.
 * @internal
 * @module
 */
import { Environment, Interpreter } from '@huggingface/jinja';

/** Which limit a render ran into. @internal */
export type TemplateLimitKind = 'output' | 'work' | 'items' | 'time' | 'range' | 'depth';

/** A render stopped by a limit; the chat template turns it into a QwenVLError. @internal */
export class TemplateLimitError extends Error {
  constructor(
    readonly kind: TemplateLimitKind,
    message: string,
  ) {
    super(message);
    this.name = 'TemplateLimitError';
  }
}

/** Limits of one render. @internal */
export interface TemplateLimits {
  /** Most characters of the output and of any string made on the way. */
  maxChars: number;
  /** Most characters produced by all blocks together (nested blocks count again). */
  maxWork: number;
  /** Most items of any list made on the way. */
  maxItems: number;
  /** Date.now() after which rendering stops. */
  deadline: number;
  /** The time limit in ms (for messages). */
  timeoutMs: number;
}

/** Output allowed whatever the request: the template's own text (system prompts, tool blurbs). */
export const BASE_OUTPUT_CHARS = 2 ** 20;
/** How many times each character of the request the output may use (templates render content once). */
export const OUTPUT_PER_INPUT_CHAR = 4;
/** No prompt is longer: 128 Mi characters is far more than any context holds. */
export const MAX_OUTPUT_CHARS = 2 ** 27;
/** Block output counted over all nesting levels, per allowed output character. */
export const WORK_PER_OUTPUT_CHAR = 8;
/** Most items of one list. */
export const MAX_ITEMS = 2 ** 20;
/** Time allowed whatever the request (normal templates render in milliseconds). */
export const BASE_TIMEOUT_MS = 1000;
/** Extra time per character of the request. */
export const TIMEOUT_MS_PER_INPUT_CHAR = 1e-4;
/** Jinja's sandbox MAX_RANGE: transformers refuses longer ranges too. */
export const MAX_RANGE = 100000;

/** The limits for a request whose strings total `inputChars` characters. @internal */
export function templateLimits(inputChars: number, now = Date.now()): TemplateLimits {
  const maxChars = Math.min(MAX_OUTPUT_CHARS, BASE_OUTPUT_CHARS + OUTPUT_PER_INPUT_CHAR * inputChars);
  const timeoutMs = Math.round(BASE_TIMEOUT_MS + TIMEOUT_MS_PER_INPUT_CHAR * inputChars);
  return { maxChars, maxWork: WORK_PER_OUTPUT_CHAR * maxChars, maxItems: MAX_ITEMS, deadline: now + timeoutMs, timeoutMs };
}

/** Total length of the strings (keys included) in a plain JS value, as the template receives it. @internal */
export function measureInput(value: unknown, depth = 0): number {
  if (typeof value === 'string') return value.length;
  if (typeof value !== 'object' || value === null || depth > 64) return 0;
  let n = 0;
  if (Array.isArray(value)) for (const v of value) n += measureInput(v, depth + 1);
  else for (const [k, v] of Object.entries(value)) n += k.length + measureInput(v, depth + 1);
  return n;
}

/** Python's range(), refusing more than {@link MAX_RANGE} items before making any. @internal */
export function limitedRange(start: number, stop?: number, step = 1): number[] {
  if (stop === undefined) {
    stop = start;
    start = 0;
  }
  if (![start, stop, step].every((x) => typeof x === 'number' && Number.isFinite(x))) {
    throw new TemplateLimitError('range', 'range() needs finite numbers');
  }
  if (step === 0) throw new TemplateLimitError('range', 'range() step must not be zero');
  const count = Math.max(0, Math.ceil((stop - start) / step));
  if (count > MAX_RANGE) {
    throw new TemplateLimitError('range', `range() of ${count} items is over the limit of ${MAX_RANGE}`);
  }
  const out: number[] = new Array(count);
  for (let i = 0; i < count; i++) out[i] = start + i * step;
  return out;
}

// The runtime value and AST shapes this file looks at (the package does not export the classes).
interface RV {
  type: string;
  value: unknown;
  toString(): string;
}
interface Node {
  type: string;
  [key: string]: unknown;
}
/** An argument already evaluated: returned as is by `evaluate`, so nothing runs twice. */
const PRECOMPUTED = '__QwenVLPrecomputed';

function isList(v: RV): boolean {
  return v.type === 'ArrayValue' || v.type === 'TupleValue';
}
function isMapping(v: RV): boolean {
  return v.type === 'ObjectValue' || v.type === 'NamespaceValue' || v.type === 'KeywordArgumentsValue';
}

/**
 * Upper estimate of the characters `v` prints as (str() or tojson), stopping once over `limit`.
 * `perNode(depth)` is the overhead of each list or mapping (brackets, separators, indentation);
 * `perChar` covers escaping (tojson with ensure_ascii: up to 6 per character).
 */
function printedSize(v: RV, limit: number, perNode: (depth: number) => number, perChar: number): number {
  let total = 0;
  const stack: [RV, number][] = [[v, 0]];
  while (stack.length > 0 && total <= limit) {
    const [x, depth] = stack.pop()!;
    if (x.type === 'StringValue') total += perChar * (x.value as string).length + 2;
    else if (isList(x)) {
      total += perNode(depth);
      for (const e of x.value as RV[]) stack.push([e, depth + 1]);
    } else if (isMapping(x)) {
      total += perNode(depth);
      for (const [k, e] of x.value as Map<string, RV>) {
        total += perChar * k.length + perNode(depth + 1);
        stack.push([e, depth + 1]);
      }
    } else total += 24;
  }
  return total;
}

function str(v: RV | undefined): string | undefined {
  return v?.type === 'StringValue' ? (v.value as string) : undefined;
}
function int(v: RV | undefined): number | undefined {
  return v?.type === 'IntegerValue' ? (v.value as number) : undefined;
}
/** Occurrences of `needle` in `s` (an empty needle matches between every character). */
function occurrences(s: string, needle: string): number {
  return needle === '' ? s.length + 1 : s.split(needle).length - 1;
}

type Proto = Record<string, (this: unknown, ...args: never[]) => RV>;
const base = Interpreter.prototype as unknown as Proto;

/** The part of the engine's Interpreter used here (its typings do not resolve under NodeNext). */
interface EngineInterpreter {
  run(program: unknown): RV;
  evaluate(statement: unknown, environment: Environment): RV;
}
const BaseInterpreter = Interpreter as unknown as new (env: Environment) => EngineInterpreter;

/** The Interpreter with the limits checked while it runs. */
class LimitedInterpreter extends BaseInterpreter {
  private steps = 0;
  private work = 0;

  constructor(
    env: Environment,
    readonly limits: TemplateLimits,
  ) {
    super(env);
  }

  override evaluate(statement: unknown, environment: Environment): RV {
    const node = statement as Node | undefined;
    if (node?.type === PRECOMPUTED) return node.value as RV;
    this.tick();
    const v = super.evaluate(statement, environment);
    this.checkValue(v);
    return v;
  }

  /** Counts one step; every 1024 steps, checks the deadline. */
  tick(): void {
    if ((++this.steps & 1023) === 0 && Date.now() > this.limits.deadline) {
      throw new TemplateLimitError('time', `rendering took over ${this.limits.timeoutMs} ms`);
    }
  }

  checkValue(v: RV): void {
    if (v.type === 'StringValue') this.checkChars((v.value as string).length, 'a string');
    else if (isList(v) && (v.value as RV[]).length > this.limits.maxItems) {
      throw new TemplateLimitError('items', `a list of ${(v.value as RV[]).length} items is over the limit of ${this.limits.maxItems}`);
    }
  }

  checkChars(n: number, what: string): void {
    if (n > this.limits.maxChars) {
      throw new TemplateLimitError('output', `${what} of over ${this.limits.maxChars} characters`);
    }
  }

  addWork(n: number): void {
    this.work += n;
    if (this.work > this.limits.maxWork) {
      throw new TemplateLimitError('work', `blocks produced over ${this.limits.maxWork} characters in all`);
    }
  }

  /** `v` made printable (str()), after estimating its size. */
  printable(v: RV): string {
    if (isList(v) || isMapping(v)) this.checkChars(printedSize(v, this.limits.maxChars, () => 4, 2), 'a printed value');
    return v.toString();
  }

  /** Estimates `s.replace(from, to[, count])` before it runs. */
  checkReplace(s: string, args: RV[]): void {
    const from = str(args[0]);
    const to = str(args[1]);
    if (from === undefined || to === undefined) return;
    const count = int(args[2]);
    const n = count !== undefined && count >= 0 ? Math.min(count, occurrences(s, from)) : occurrences(s, from);
    this.checkChars(s.length + n * Math.max(0, to.length - from.length), 'a replace');
  }

  /** A node standing for an already evaluated value. */
  static pre(value: RV): Node {
    return { type: PRECOMPUTED, value };
  }

  /** Evaluates a call's arguments once, returning them as values and as precomputed nodes. */
  preArgs(args: Node[], environment: Environment): { positional: RV[]; keyword: Map<string, RV>; nodes: Node[] } {
    const positional: RV[] = [];
    const keyword = new Map<string, RV>();
    const nodes = args.map((a) => {
      if (a.type === 'KeywordArgumentExpression') {
        const v = this.evaluate(a.value, environment);
        keyword.set((a.key as { value: string }).value, v);
        return { ...a, value: LimitedInterpreter.pre(v) };
      }
      if (a.type === 'SpreadExpression' || a.type === 'KeywordSpreadExpression') {
        return { ...a, argument: LimitedInterpreter.pre(this.evaluate(a.argument, environment)) };
      }
      const v = this.evaluate(a, environment);
      positional.push(v);
      return LimitedInterpreter.pre(v);
    });
    return { positional, keyword, nodes };
  }
}

const proto = LimitedInterpreter.prototype as unknown as Proto;

// evaluateBlock (private in the typings) replaced: it is where output is concatenated.
proto.evaluateBlock = function evaluateBlock(this: LimitedInterpreter, statements: Node[], environment: Environment): RV {
  // A loop over an empty body evaluates nothing else: count the block itself as a step.
  this.tick();
  let result = '';
  for (const statement of statements) {
    const v = this.evaluate(statement, environment);
    if (v.type === 'NullValue' || v.type === 'UndefinedValue') continue;
    const text = this.printable(v);
    result += text;
    this.checkChars(result.length, 'output');
    this.addWork(text.length);
  }
  return makeString(this, result);
} as never;

// Filters that can make a huge value in one step are estimated first.
proto.applyFilter = function applyFilter(this: LimitedInterpreter, operand: RV, filterNode: Node, environment: Environment): RV {
  const name = filterNode.type === 'Identifier' ? (filterNode.value as string) : ((filterNode.callee as Node | undefined)?.value as string | undefined);
  let node = filterNode;
  let positional: RV[] = [];
  let keyword = new Map<string, RV>();
  if (filterNode.type === 'CallExpression' && (name === 'join' || name === 'indent' || name === 'replace' || name === 'tojson')) {
    const pre = this.preArgs(filterNode.args as Node[], environment);
    ({ positional, keyword } = pre);
    node = { ...filterNode, args: pre.nodes };
  }
  const max = this.limits.maxChars;
  if (name === 'join' && isList(operand)) {
    const sep = str(positional[0] ?? keyword.get('separator')) ?? '';
    const items = operand.value as RV[];
    this.checkChars(printedSize(operand, max, () => 0, 1) + sep.length * items.length, 'a join');
  } else if (name === 'join' && operand.type === 'StringValue') {
    // A string joins its characters.
    const sep = str(positional[0] ?? keyword.get('separator')) ?? '';
    this.checkChars((operand.value as string).length * (1 + sep.length), 'a join');
  } else if (name === 'indent' && operand.type === 'StringValue') {
    const width = int(positional[0] ?? keyword.get('width')) ?? 4;
    const s = operand.value as string;
    this.checkChars(s.length + Math.max(0, width) * occurrences(s, '\n') + Math.max(0, width), 'an indent');
  } else if (name === 'replace' && operand.type === 'StringValue') {
    this.checkReplace(operand.value as string, positional);
  } else if (name === 'tojson') {
    const indent = Math.max(0, int(keyword.get('indent')) ?? 0);
    const seps = keyword.get('separators');
    const sepLen = seps && isList(seps) ? (seps.value as RV[]).reduce((n, s) => n + (str(s)?.length ?? 0), 0) : 2;
    this.checkChars(printedSize(operand, max, (d) => 4 + sepLen + indent * (d + 1), 6), 'tojson output');
  } else if ((name === 'string' || name === 'list') && (isList(operand) || isMapping(operand))) {
    this.checkChars(printedSize(operand, max, () => 4, 2), 'a printed value');
  }
  return base.applyFilter.call(this, operand as never, node as never, environment as never);
} as never;

// `s.replace(old, new)`: the string method, estimated like the filter.
proto.evaluateCallExpression = function evaluateCallExpression(this: LimitedInterpreter, expr: Node, environment: Environment): RV {
  const callee = expr.callee as Node;
  const property = callee.property as Node | undefined;
  if (callee.type === 'MemberExpression' && !callee.computed && property?.type === 'Identifier' && property.value === 'replace') {
    const object = this.evaluate(callee.object, environment);
    const pre = this.preArgs(expr.args as Node[], environment);
    if (object.type === 'StringValue') this.checkReplace(object.value as string, pre.positional);
    const call = { ...expr, callee: { ...callee, object: LimitedInterpreter.pre(object) }, args: pre.nodes };
    return base.evaluateCallExpression.call(this, call as never, environment as never);
  }
  return base.evaluateCallExpression.call(this, expr as never, environment as never);
} as never;

/** A StringValue made the engine's way (its classes are not exported): evaluate a string literal. */
function makeString(interp: LimitedInterpreter, text: string): RV {
  return base.evaluate.call(interp, { type: 'StringLiteral', value: text } as never, undefined as never);
}

/**
 * Runs a parsed template in `env` under `limits`; returns the output.
 * @throws TemplateLimitError when a limit is reached; whatever the template throws otherwise.
 * @internal
 */
export function renderLimited(program: unknown, env: Environment, limits: TemplateLimits): string {
  try {
    return new LimitedInterpreter(env, limits).run(program).value as string;
  } catch (e) {
    if (e instanceof RangeError && /call stack/i.test(e.message)) {
      throw new TemplateLimitError('depth', 'recursion too deep (the call stack overflowed)');
    }
    throw e;
  }
}
