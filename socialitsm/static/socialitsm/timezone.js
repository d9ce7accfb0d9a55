// Times are shown in the user's time zone: the browser's one is kept in a cookie, and given to
// the profile once when the user has not chosen one (the page then reloads in that zone).
(function () {
  "use strict";

  var zone = window.Intl && Intl.DateTimeFormat ? Intl.DateTimeFormat().resolvedOptions().timeZone : "";
  if (!zone) return;
  var cookie = "socialitsm_tz=" + encodeURIComponent(zone);
  if (document.cookie.split("; ").indexOf(cookie) === -1) {
    document.cookie = cookie + "; path=/; max-age=31536000; SameSite=Lax";
  }
  var body = document.body;
  var url = body.dataset.timeZoneUrl;
  if (!url || body.dataset.timeZone) return;
  var headers = {};
  try {
    headers = JSON.parse(body.getAttribute("hx-headers") || "{}");
  } catch (error) {
    headers = {};
  }
  var data = new URLSearchParams();
  data.set("time_zone", zone);
  fetch(url, { method: "POST", credentials: "same-origin", headers: headers, body: data })
    .then(function (response) {
      return response.ok ? response.json() : {};
    })
    .then(function (answer) {
      if (answer.time_zone && answer.time_zone !== body.dataset.activeTimeZone) window.location.reload();
    });
})();
