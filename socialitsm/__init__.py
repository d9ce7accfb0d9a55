"""SocialITSM: social posts become incidents a service desk can work."""
