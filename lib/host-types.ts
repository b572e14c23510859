// The host's types that the public API names, Buffer and AbortSignal, taken
// from the consumer's own environment: from @types/node (or, for
// AbortSignal, the DOM library) when it declares them, so that its code
// sees the real types; otherwise a stand-in, so that the published typings
// (index.d.ts) compile in a project without @types/node.

/** Node's Buffer where the environment declares it; otherwise the Uint8Array that Buffer extends. */
export type NodeBuffer = typeof globalThis extends { Buffer: { alloc(size: number): infer B } } ? B : Uint8Array

// HostBuffer<B> needs the host's Buffer over a given kind of ArrayBuffer,
// which a type can only name through a generic signature: the instantiation
// expressions below (`typeof value.from<B>`) pick the host's signatures of
// one type parameter, and these values exist only for them (type queries;
// nothing reads them at run time). Each also brings a signature of its own
// for when the host has no generic one: a Buffer or @types/node older than
// the generic Buffer, or TypeScript before 5.7 (no generic Uint8Array). As
// the last signature is the one ReturnType and InstanceType read, the
// host's wins where it has one.

/** Uint8Array's constructor, with a generic signature even before TypeScript 5.7 (which gives the plain Uint8Array). */
declare const uint8ArrayConstructor: { new <B extends ArrayBufferLike>(buffer: B): Uint8Array } & typeof Uint8Array

/** A Uint8Array over a `B`: `Uint8Array<B>`, or before TypeScript 5.7 the plain Uint8Array. */
type BytesOver<B extends ArrayBufferLike> = InstanceType<typeof uint8ArrayConstructor<B>>

/** The global Buffer constructor, if the environment declares one. */
type HostBufferConstructor = typeof globalThis extends { Buffer: infer C } ? C : unknown

/** Buffer's `from`, with a generic signature even where the host's Buffer is not generic (which gives NodeBuffer). */
declare const hostBufferConstructor: {
  from<B extends ArrayBufferLike>(arrayBuffer: B): typeof globalThis extends { Buffer: unknown } ? NodeBuffer : BytesOver<B>
} & HostBufferConstructor

/**
 * A Buffer over a `B` (ArrayBuffer, SharedArrayBuffer or either): Node's
 * `Buffer<B>` where the environment declares it; otherwise the
 * `Uint8Array<B>` that Buffer extends. Where the host's Buffer is not
 * generic, its plain Buffer.
 */
export type HostBuffer<B extends ArrayBufferLike> = ReturnType<typeof hostBufferConstructor.from<B>>

/** AbortSignal where the environment declares it; otherwise what posix-shm reads of one. */
export type AbortSignalLike = typeof globalThis extends { AbortSignal: { prototype: infer S } }
  ? S
  : { readonly aborted: boolean; readonly reason: unknown }
