{
  "targets": [{
    "target_name": "qwenvl",
    "sources": [
      "<!@(node -p \"const s=require('./native/sources.json');[...s.core,...s.napi,...s.no_cuda].join(' ')\")"
    ],
    "include_dirs": ["native"],
    "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"],
    "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED"],
    "cflags_cc": ["-std=c++17", "-O3", "-fno-math-errno", "-Werror=switch"],
    "conditions": [
      ["OS=='mac'", {"xcode_settings": {"CLANG_CXX_LANGUAGE_STANDARD": "c++17"}}],
      ["OS=='win'", {"msvs_settings": {"VCCLCompilerTool": {"AdditionalOptions": ["/std:c++17"]}}}]
    ]
  }]
}
