/*
 * Minimal repro: Deno 2.9.6 keeps the resource of napi_async_init() alive until napi_async_destroy(); Node
 * holds it weakly (its docs: "napi_async_contexts are not maintaining the strong reference to the
 * async_resource objects"). node-webrtc (@roamhq/wrtc) passes each object itself as the resource and destroys
 * the context in the object's destructor, so in Deno no peer, track, channel, sink or stream is ever freed.
 * Build and run: see run.sh next to this file.
 */
#include <node_api.h>
#include <stdlib.h>

static int finalized = 0;

static void finalize(napi_env env, void* data, void* hint) {
  finalized++;
  free(data);
}

/* make(withAsyncContext): a wrapped object; with true, also napi_async_init(obj) (never destroyed). */
static napi_value make(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  bool with_context = false;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  napi_get_value_bool(env, argv[0], &with_context);
  napi_value obj;
  napi_create_object(env, &obj);
  napi_wrap(env, obj, malloc(100000), finalize, NULL, NULL);
  if (with_context) {
    napi_value name;
    napi_async_context context;
    napi_create_string_utf8(env, "repro", NAPI_AUTO_LENGTH, &name);
    napi_async_init(env, obj, name, &context);
  }
  return obj;
}

static napi_value count(napi_env env, napi_callback_info info) {
  napi_value v;
  napi_create_int32(env, finalized, &v);
  return v;
}

NAPI_MODULE_INIT() {
  napi_value f;
  napi_create_function(env, "make", NAPI_AUTO_LENGTH, make, NULL, &f);
  napi_set_named_property(env, exports, "make", f);
  napi_create_function(env, "count", NAPI_AUTO_LENGTH, count, NULL, &f);
  napi_set_named_property(env, exports, "count", f);
  return exports;
}
