// One exception type with a stable code; the N-API layer turns it into a JS QwenVLError.
#pragma once
#include <stdexcept>
#include <string>

namespace qvl {

enum class ErrorCode {
  ModelFormat,      // E_MODEL_FORMAT: a checkpoint file is malformed or inconsistent
  Unsupported,      // E_UNSUPPORTED: valid input this build or model cannot handle
  Input,            // E_INPUT: bad argument from the caller
  ContextOverflow,  // E_CONTEXT_OVERFLOW
  Aborted,          // E_ABORTED
  Disposed,         // E_DISPOSED
  Native,           // E_NATIVE: an internal failure (allocation, OS call)
};

const char* error_code_name(ErrorCode c);

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& msg) : std::runtime_error(msg), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

[[noreturn]] inline void fail(ErrorCode code, const std::string& msg) { throw Error(code, msg); }

}  // namespace qvl

// Argument checks that survive release builds: native code never trusts a shape it did not check.
#define QVL_CHECK(cond, code, msg)                   \
  do {                                               \
    if (!(cond)) ::qvl::fail(::qvl::ErrorCode::code, (msg)); \
  } while (0)
