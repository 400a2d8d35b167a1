#pragma once
// A pthread mutex held for a scope (the library avoids std::mutex: no static objects, and
// process-shared memory needs pthread's attributes).
#include <pthread.h>

#include <cerrno>

namespace socksify::core {

/// Locks `m` for the scope. A robust mutex whose owner died holding it ("owner dead") is
/// marked consistent and held: the callers' data is published last, so it is whole.
class MutexLock {
 public:
  explicit MutexLock(pthread_mutex_t* m) noexcept : m_(m) {
    if (pthread_mutex_lock(m_) == EOWNERDEAD) pthread_mutex_consistent(m_);
  }
  ~MutexLock() { pthread_mutex_unlock(m_); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  pthread_mutex_t* m_;
};

}  // namespace socksify::core
