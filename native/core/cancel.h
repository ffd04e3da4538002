// A request's cancel flag. The caller's thread (JS: an AbortSignal, Model.dispose) sets it at any
// time; the thread running the request polls it between layers and vision blocks and stops there
// with the reason's error, so a cancelled request gives its CPU back within one layer instead of
// at the end of the prefill. An ExecContext (core/exec_context.h) carries the request's token.
#pragma once
#include <atomic>
#include <string>

#include "core/error.h"

namespace qvl {

class CancelToken {
 public:
  // Why a request stops. Only the first cancel counts: an abort followed by a dispose stays an abort.
  enum class Reason : int { None = 0, Aborted = 1, Disposed = 2 };

  void cancel(Reason why) {
    int none = static_cast<int>(Reason::None);
    reason_.compare_exchange_strong(none, static_cast<int>(why), std::memory_order_acq_rel);
  }
  Reason reason() const { return static_cast<Reason>(reason_.load(std::memory_order_acquire)); }
  bool cancelled() const { return reason() != Reason::None; }

  // Throws E_ABORTED or E_DISPOSED once cancelled; `where` names the stage for the message.
  void check(const char* where) const {
    switch (reason()) {
      case Reason::None:
        return;
      case Reason::Aborted:
        fail(ErrorCode::Aborted, std::string("request aborted during ") + where);
      case Reason::Disposed:
        fail(ErrorCode::Disposed, std::string("model disposed during ") + where);
    }
  }

 private:
  std::atomic<int> reason_{static_cast<int>(Reason::None)};
};

// The check for optional tokens: work started without one (tests, benchmarks) never stops early.
inline void check_cancel(const CancelToken* token, const char* where) {
  if (token) token->check(where);
}

}  // namespace qvl
