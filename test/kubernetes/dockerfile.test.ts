/**
 * The Dockerfile cannot be built here (no Docker engine), so its structure is
 * checked instead, and checked against what uses it: the chart's container
 * ports and arguments (run through our CLI's and Kyutai's own --help), the
 * files it copies (present, not excluded by .dockerignore), the Moshi
 * version the rest of the project uses.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { findPythonEnv, MOSHI_VERSION } from '../../src/kyutai/python-env.js';
import { CLI_ARGS, REPO } from '../helpers/gateway.js';

interface Instruction {
  keyword: string;
  args: string;
  line: number;
}

/** Dockerfile instructions: comments dropped, continuation lines joined. */
function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let pending: Instruction | undefined;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!pending && (line === '' || line.startsWith('#'))) return;
    if (pending && line.startsWith('#')) return;
    const continues = line.endsWith('\\');
    const body = continues ? line.slice(0, -1).trim() : line;
    if (pending) pending.args += ` ${body}`;
    else {
      const [keyword, ...rest] = body.split(/\s+/);
      pending = { keyword: keyword.toUpperCase(), args: rest.join(' '), line: i + 1 };
    }
    if (!continues) {
      out.push(pending);
      pending = undefined;
    }
  });
  return out;
}

interface Stage {
  name: string;
  base: string;
  instructions: Instruction[];
}

function stagesOf(instructions: Instruction[]): Stage[] {
  const stages: Stage[] = [];
  for (const ins of instructions) {
    if (ins.keyword === 'FROM') {
      const [base, as, name] = ins.args.split(/\s+/);
      expect(as?.toUpperCase(), `FROM at line ${ins.line} names its stage`).toBe('AS');
      stages.push({ name, base, instructions: [] });
    } else if (stages.length) stages.at(-1)!.instructions.push(ins);
  }
  return stages;
}

const dockerfile = parseDockerfile(readFileSync(resolve(REPO, 'Dockerfile'), 'utf8'));
const stages = stagesOf(dockerfile);
const globalArgs = Object.fromEntries(
  dockerfile
    .slice(0, dockerfile.findIndex((i) => i.keyword === 'FROM'))
    .filter((i) => i.keyword === 'ARG')
    .map((i) => i.args.split('=') as [string, string]),
);
const stage = (name: string) => stages.find((s) => s.name === name)!;
const execForm = (ins: Instruction | undefined) => JSON.parse(ins!.args) as string[];
const dockerignore = readFileSync(resolve(REPO, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));

/** Containers of the chart (base and overlays), by image name. */
async function chartContainers(): Promise<{ image: string; ports: number[]; args: string[] }[]> {
  const { kubeBinaries } = await import('./harness/control-plane.js');
  const kustomize = resolve(await kubeBinaries(), 'kustomize');
  const out: { image: string; ports: number[]; args: string[] }[] = [];
  for (const dir of ['deploy/kubernetes/base', 'deploy/kubernetes/overlays/cascade-cpu']) {
    const { stdout } = await promisify(execFile)(kustomize, ['build', resolve(REPO, dir)]);
    for (const doc of parseAllDocuments(stdout)) {
      const o = doc.toJS() as { kind: string; spec?: { template?: { spec?: { containers?: { image: string; ports?: { containerPort: number }[]; args?: string[] }[] } } } };
      for (const c of o.spec?.template?.spec?.containers ?? []) out.push({ image: c.image, ports: (c.ports ?? []).map((p) => p.containerPort), args: c.args ?? [] });
    }
  }
  return out;
}

describe('Dockerfile', () => {
  it('pins its base images, names its stages, and ends with the gateway/worker image (the default target)', () => {
    expect(stages.map((s) => s.name)).toEqual(['build', 'moshi', 'quillman']);
    for (const s of stages) {
      const base = s.base.replace(/^\$\{(\w+)\}$/, (_m, arg: string) => globalArgs[arg] ?? '');
      expect(base, `stage ${s.name}`).toMatch(/^[\w./-]+:\d+(\.\d+)*-[\w.-]+$/);
      expect(base).not.toMatch(/:latest$/);
    }
  });

  it('installs from the lockfile before copying sources, and keeps only production packages', () => {
    const build = stage('build').instructions;
    const at = (pred: (i: Instruction) => boolean) => build.findIndex(pred);
    const lockfile = at((i) => i.keyword === 'COPY' && i.args.includes('package-lock.json'));
    const install = at((i) => i.keyword === 'RUN' && /\bnpm ci\b/.test(i.args));
    const sources = at((i) => i.keyword === 'COPY' && /^src\b/.test(i.args));
    expect(lockfile).toBeGreaterThanOrEqual(0);
    expect(install).toBeGreaterThan(lockfile);
    expect(sources).toBeGreaterThan(install);
    expect(build.some((i) => i.keyword === 'RUN' && /npm run build/.test(i.args) && /npm prune --omit=dev/.test(i.args))).toBe(true);
    expect(build.some((i) => i.keyword === 'ENV' && i.args === 'ONNXRUNTIME_NODE_INSTALL=skip')).toBe(true);
  });

  it('copies only files that exist and that .dockerignore lets through', () => {
    for (const ins of stages.flatMap((s) => s.instructions)) {
      if (ins.keyword !== 'COPY' || ins.args.startsWith('--from')) continue;
      const sources = ins.args.split(/\s+/).slice(0, -1);
      for (const source of sources) {
        expect(existsSync(resolve(REPO, source)), `${source} (line ${ins.line})`).toBe(true);
        expect(dockerignore, `${source} is excluded by .dockerignore`).not.toContain(source);
      }
    }
    for (const heavy of ['node_modules', 'dist', '.git']) expect(dockerignore).toContain(heavy);
  });

  it('runs the gateway image as an unprivileged user, with exec-form entrypoints', () => {
    const final = stage('quillman').instructions;
    const user = final.findLast((i) => i.keyword === 'USER');
    expect(user?.args).toBe('node');
    expect(final.findIndex((i) => i.keyword === 'USER')).toBeLessThan(final.findIndex((i) => i.keyword === 'ENTRYPOINT'));
    for (const s of ['quillman', 'moshi']) {
      for (const keyword of ['ENTRYPOINT', 'CMD']) expect(() => execForm(stage(s).instructions.find((i) => i.keyword === keyword))).not.toThrow();
    }
    expect(execForm(final.find((i) => i.keyword === 'ENTRYPOINT'))).toEqual(['node', '/app/bin/quillman.js']);
    const apt = final.find((i) => i.keyword === 'RUN' && i.args.includes('apt-get install'))!;
    expect(apt.args).toMatch(/--no-install-recommends/);
    expect(apt.args).toMatch(/rm -rf \/var\/lib\/apt\/lists/);
  });

  it('builds the Moshi image with the Moshi version the project uses', () => {
    const arg = stage('moshi').instructions.find((i) => i.keyword === 'ARG' && i.args.startsWith('MOSHI_VERSION='));
    expect(arg?.args).toBe(`MOSHI_VERSION=${MOSHI_VERSION}`);
    expect(execForm(stage('moshi').instructions.find((i) => i.keyword === 'ENTRYPOINT'))).toEqual(['python', '-m', 'moshi.server']);
  });

  it("matches the chart: the ports it exposes, and arguments each program really takes", async () => {
    const containers = await chartContainers();
    const exposed = (s: string) => stage(s).instructions.filter((i) => i.keyword === 'EXPOSE').flatMap((i) => i.args.split(/\s+/).map(Number));
    const run = promisify(execFile);
    const help = new Map<string, string>();
    for (const c of containers) {
      const isMoshi = /quillman-moshi/.test(c.image);
      for (const port of c.ports) expect(exposed(isMoshi ? 'moshi' : 'quillman'), `${c.image} port ${port}`).toContain(port);
      const flags = c.args.filter((a) => a.startsWith('--')).map((a) => a.split('=')[0]);
      if (isMoshi) {
        const python = findPythonEnv()?.python;
        if (!python) continue; // Kyutai's environment is made by the kyutai tests; without it only the ports are checked.
        if (!help.has('moshi')) help.set('moshi', (await run(python, ['-m', 'moshi.server', '--help'], { timeout: 120_000 })).stdout);
        for (const flag of flags) expect(help.get('moshi'), `moshi.server takes ${flag}`).toMatch(new RegExp(`\\s${flag}[\\s\\]=,]`));
      } else {
        const command = c.args[0];
        expect(['serve', 'worker']).toContain(command);
        if (!help.has(command)) help.set(command, (await run(process.execPath, [...CLI_ARGS, command, '--help'], { cwd: REPO, timeout: 120_000 })).stdout);
        for (const flag of flags) expect(help.get(command), `quillman ${command} takes ${flag}`).toMatch(new RegExp(`\\s${flag}[\\s,]`));
      }
    }
  }, 180_000);
});
