#include "core/error.h"

namespace qvl {

const char* error_code_name(ErrorCode c) {
  switch (c) {
    case ErrorCode::ModelFormat: return "E_MODEL_FORMAT";
    case ErrorCode::Unsupported: return "E_UNSUPPORTED";
    case ErrorCode::Input: return "E_INPUT";
    case ErrorCode::ContextOverflow: return "E_CONTEXT_OVERFLOW";
    case ErrorCode::Aborted: return "E_ABORTED";
    case ErrorCode::Disposed: return "E_DISPOSED";
    case ErrorCode::Native: return "E_NATIVE";
  }
  return "E_NATIVE";
}

}  // namespace qvl
