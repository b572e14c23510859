// Imported before posix-shm by the copy-mode spec, so the native side
// reads this variable when it loads.
process.env.POSIX_SHM_NO_EXTERNAL_BUFFERS = '1'
