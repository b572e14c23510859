// The host's types that the public API names, Buffer and AbortSignal, taken
// from the consumer's own environment: from @types/node (or, for
// AbortSignal, the DOM library) when it declares them, so that its code
// sees the real types; otherwise a stand-in, so that the published typings
// (index.d.ts) compile in a project without @types/node.

/** Node's Buffer where the environment declares it; otherwise the Uint8Array that Buffer extends. */
export type NodeBuffer = typeof globalThis extends { Buffer: { alloc(size: number): infer B } } ? B : Uint8Array

/** AbortSignal where the environment declares it; otherwise what posix-shm reads of one. */
export type AbortSignalLike = typeof globalThis extends { AbortSignal: { prototype: infer S } }
  ? S
  : { readonly aborted: boolean; readonly reason: unknown }
