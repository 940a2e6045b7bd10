/**
 * Every provider of workers. Adding one is a folder under providers/ that
 * exports a ProviderDefinition, and its line here: settings validation,
 * `--provider` choices, flags, the docs tables and the contract tests follow
 * from the definition. The first is the default.
 *
 * A provider whose SDK is heavy imports it lazily (inside create() or its
 * host's start()), so that `quillman serve --provider local` never loads it.
 */
import type { AnyProviderDefinition } from './provider.js';
import { kubernetesProvider } from './providers/kubernetes/index.js';
import { localProvider } from './providers/local/index.js';
import { modalProvider } from './providers/modal/index.js';
import { remoteProvider } from './providers/remote/index.js';

export const PROVIDERS = [localProvider, remoteProvider, modalProvider, kubernetesProvider] as const;

export type ProviderName = (typeof PROVIDERS)[number]['name'];

export const PROVIDER_NAMES: readonly ProviderName[] = PROVIDERS.map((p) => p.name);

/** The definition called `name` in `registry` (the built-in one by default). */
export function findProvider(name: string, registry: readonly AnyProviderDefinition[] = PROVIDERS): AnyProviderDefinition | undefined {
  return registry.find((p) => p.name === name);
}
