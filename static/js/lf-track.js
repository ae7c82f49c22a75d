/*! LeadFunnel website tracking: page views of an anonymous visitor (first-party cookie lf_vid),
 * identified later by a form (hidden lf_visitor field) or a tracked email link (lf_id).
 * Nothing is stored or sent under Do-Not-Track / Global Privacy Control or without consent.
 *
 *   <script>window.lfTrack=window.lfTrack||function(){(lfTrack.q=lfTrack.q||[]).push(arguments)};</script>
 *   <script async src="https://crm.example.com/static/js/lf-track.js" data-site="lf_..."></script>
 *
 * data-consent="false": wait for lfTrack('consent', true). lfTrack('consent', false) stops and
 * forgets the visitor id. lfTrack('pageview') sends a view of the current URL (single-page apps).
 */
(function (window, document) {
  "use strict";
  var COOKIE = "lf_vid";
  var MAX_AGE = 395 * 24 * 3600; // about 13 months
  var script = document.currentScript || document.querySelector("script[data-site][src*='lf-track']");
  if (!script) return;
  var siteKey = script.getAttribute("data-site") || "";
  var endpoint = script.getAttribute("data-endpoint") || new URL("/api/v1/track/", script.src).href;
  var queued = (window.lfTrack && window.lfTrack.q) || [];
  var consent = (script.getAttribute("data-consent") || "true").toLowerCase() !== "false";
  var pending = true; // the first page view waits for consent
  var identify = "";

  function doNotTrack() {
    var n = window.navigator || {};
    return n.doNotTrack === "1" || n.doNotTrack === "yes" || window.doNotTrack === "1" || n.globalPrivacyControl === true;
  }

  function allowed() {
    return consent && !doNotTrack() && !!siteKey;
  }

  function readCookie() {
    var match = document.cookie.match(/(?:^|;\s*)lf_vid=([A-Za-z0-9_-]{16,64})/);
    return match ? match[1] : "";
  }

  function writeCookie(value, maxAge) {
    var secure = window.location.protocol === "https:" ? "; Secure" : "";
    document.cookie = COOKIE + "=" + value + "; Max-Age=" + maxAge + "; Path=/; SameSite=Lax" + secure;
  }

  function newId() {
    var bytes = new Uint8Array(16);
    (window.crypto || window.msCrypto).getRandomValues(bytes);
    var out = "";
    for (var i = 0; i < bytes.length; i++) out += ("0" + bytes[i].toString(16)).slice(-2);
    return out;
  }

  function visitorId() {
    if (!allowed()) return "";
    var id = readCookie() || newId();
    writeCookie(id, MAX_AGE); // refreshed on every page: the cookie lives while the visitor returns
    return id;
  }

  function fillForms() {
    var id = allowed() ? readCookie() || visitorId() : "";
    var fields = document.querySelectorAll("input[name='lf_visitor'], input[name='lf_site']");
    for (var i = 0; i < fields.length; i++) {
      fields[i].value = !id ? "" : fields[i].name === "lf_visitor" ? id : siteKey;
    }
  }

  function takeIdentifyToken() {
    // A tracked email link adds ?lf_id=…: read it once, then drop it from the address bar.
    try {
      var url = new URL(window.location.href);
      var token = url.searchParams.get("lf_id");
      if (!token) return "";
      url.searchParams.delete("lf_id");
      if (window.history && window.history.replaceState) window.history.replaceState(window.history.state, "", url.href);
      return token;
    } catch (e) {
      return "";
    }
  }

  function utm(url) {
    var out = {};
    ["utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"].forEach(function (key) {
      var value = url.searchParams.get(key);
      if (value) out[key] = value.slice(0, 200);
    });
    return out;
  }

  function send() {
    if (!allowed()) return false;
    var url = new URL(window.location.href);
    var body = {
      key: siteKey,
      visitor: visitorId(),
      url: url.href.slice(0, 2000),
      title: (document.title || "").slice(0, 300),
      referrer: (document.referrer || "").slice(0, 2000),
      utm: utm(url)
    };
    if (identify) {
      body.identify = identify;
      identify = "";
    }
    var payload = JSON.stringify(body);
    // text/plain keeps it a simple request (no CORS preflight); the server reads it as JSON.
    if (window.fetch) {
      window.fetch(endpoint, {
        method: "POST", mode: "cors", credentials: "omit", keepalive: true,
        headers: {"Content-Type": "text/plain"}, body: payload
      }).catch(function () {});
    } else if (navigator.sendBeacon) {
      navigator.sendBeacon(endpoint, payload);
    }
    fillForms();
    return true;
  }

  function command(name, value) {
    if (name === "consent") {
      consent = value !== false && value !== "false";
      if (!consent) writeCookie("", 0);
      fillForms();
      if (consent && pending && send()) pending = false;
    } else if (name === "pageview") {
      send();
    } else if (name === "visitor" && typeof value === "function") {
      value(allowed() ? visitorId() : "");
    }
  }

  window.lfTrack = function () {
    command.apply(null, arguments);
  };
  window.lfTrack.visitorId = function () {
    return allowed() ? visitorId() : "";
  };

  identify = takeIdentifyToken();
  for (var i = 0; i < queued.length; i++) command.apply(null, queued[i]);
  if (pending && send()) pending = false;
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", fillForms);
  else fillForms();
})(window, document);
