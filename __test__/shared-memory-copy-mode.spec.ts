// The SharedMemory test file again, in copy mode: with
// POSIX_SHM_NO_EXTERNAL_BUFFERS=1 set before posix-shm loads, the native
// side behaves as in a runtime that refuses external ArrayBuffers.
import './copy-mode-environment'
import './shared-memory.spec'
